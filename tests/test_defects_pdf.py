"""Defects of issue 14 in llm-pdf: page ranges cost what the document has; no input is usage."""

from __future__ import annotations

import subprocess
import sys

from llmtools.cli.pdf import command as cli
from llmtools.content import pages
from tests.helpers import run_command


def test_a_huge_range_costs_what_the_document_has():
    # In a child with a 300 MB address-space cap and a time limit: the old code took 22 GB.
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (300 << 20, 300 << 20))\n"
        "from llmtools.content import pages\n"
        "wanted, missing = pages.select_pages(pages.parse_page_ranges('1-999999999999,5,2-'), 3)\n"
        "print(wanted, pages.describe_ranges(missing))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert completed.returncode == 0, completed.stderr[-500:]
    assert completed.stdout.strip() == "[1, 2, 3] 4-999999999999"


def test_missing_pages_are_described_as_ranges():
    wanted, missing = pages.select_pages(pages.parse_page_ranges("4-6,9,12-"), 5)
    assert wanted == [4, 5]
    assert pages.describe_ranges(missing) == "6, 9, 12"


def test_no_input_at_all_is_a_usage_error():
    result = run_command(cli, [], input=b"", prog_name="llm-pdf")
    assert result.status == 2, result.stderr
    assert "no input" in result.stderr
