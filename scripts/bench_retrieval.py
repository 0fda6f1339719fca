#!/usr/bin/env python3
"""Recall@k of each llm-map ranker on planted facts.

A corpus is built from this checkout's own documentation (README, docstrings, man pages: real
technical prose, full of near-miss words) with FACTS planted at fixed random places. Each
fact has a question that paraphrases it. The corpus is chunked as llm-map chunks it; a
question scores a hit at k when a chunk holding its whole fact is among the k best.

    scripts/bench_retrieval.py                      # bm25, hashed, their fusion
    scripts/bench_retrieval.py --gguf PATH.gguf     # adds the GGUF model's embeddings (slow)
    scripts/bench_retrieval.py --markdown           # the README table

Run with the checkout's code: PYTHONPATH=. .venv/bin/python scripts/bench_retrieval.py
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# (fact, question): questions reuse some of the fact's words, as people do, but not all.
FACTS = [
    ("The lighthouse on Corran Island is kept by Eilidh Brodie.", "Who looks after the Corran lighthouse?"),
    ("Zephyr Dynamics was founded by Marguerite Okafor in 1998.", "Who started the company Zephyr Dynamics?"),
    ("The vault beneath the old bank opens with the code 4471.", "What number unlocks the vault under the bank?"),
    ("Halley's comet will next be seen from Earth in 2061.", "When does Halley's comet come back?"),
    ("The recipe for Aunt Mira's plum cake needs nine eggs.", "How many eggs go into Mira's plum cake?"),
    ("Our office printer on the third floor is called Gutenberg.", "What name does the third-floor printer have?"),
    ("The marathon route was moved to Riverside Avenue because of roadworks.",
     "Why and where was the marathon course changed?"),
    ("Professor Ilunga's lab studies the migration of Arctic terns.", "Which birds does Ilunga's laboratory research?"),
    ("The tallest tree in Redwood Grove measures 112 metres.", "How tall is the biggest tree in the grove?"),
    ("Backups of the billing database run every night at 02:30 UTC.",
     "At what time is the billing database backed up?"),
    ("The ferry to Skerra leaves from pier 7 on Tuesdays and Fridays.", "Which days does the Skerra boat sail?"),
    ("Tomas Varga won the 2019 chess open with the Catalan opening.", "Which opening did Varga play to win the open?"),
    ("The museum's missing painting was a small Vermeer sketch of a violinist.",
     "What artwork disappeared from the museum?"),
    ("Sensor 14 in the greenhouse reported humidity of 93 percent.",
     "How humid was it according to greenhouse sensor 14?"),
    ("The treaty of Valmora ended the salt war between the two duchies.",
     "What conflict did the Valmora treaty settle?"),
    ("Project Nightjar's budget was cut to 2.4 million euros.", "How much money does Nightjar have now?"),
    ("Our cat Biscuit is allergic to salmon.", "What food must Biscuit the cat avoid?"),
    ("The bridge over the Lenna river was designed by engineer Sofia Carvalho.",
     "Who was the designer of the Lenna bridge?"),
    ("Quarterly revenue for the Osaka branch rose by 17 percent.",
     "By how much did the Osaka office grow its revenue?"),
    ("The emergency generator runs on biodiesel and lasts 40 hours.",
     "How long can the backup generator keep running?"),
    ("Volunteers planted 3,000 oak saplings along the northern ridge.",
     "How many young oaks were put in on the ridge?"),
    ("The band Glass Harbour recorded their first album in a converted chapel.",
     "Where did Glass Harbour make their debut record?"),
    ("The rover's left front wheel jammed on sol 412.", "On which Martian day did the rover's wheel get stuck?"),
    ("Dr. Anand prescribes a walk of 30 minutes after every meal.", "What does Anand recommend doing after eating?"),
    ("The library's rare map collection is stored in the east basement at 16 degrees.",
     "Where are the library's old maps kept?"),
    ("Kestrel Airlines cancelled flight KA208 because of volcanic ash.",
     "Why was the Kestrel flight KA208 called off?"),
    ("The village fete raised 5,600 pounds for the new school roof.", "How much did the fete collect for the roof?"),
    ("Mount Orrin was first climbed by Hedda Lind in 1931.", "Who made the first ascent of Orrin?"),
    ("The orchestra's principal cellist, Yusuf Demir, plays a 1712 Gofriller cello.",
     "What instrument does the orchestra's lead cellist own?"),
    ("Release 4.2 of the billing service dropped support for SOAP requests.",
     "Which kind of request stopped working in billing 4.2?"),
    ("The honey from hive 9 tasted of lavender and thyme.", "What flavours did the bees in hive 9 produce?"),
    ("Inspector Moreau found the stolen ledger inside a piano.",
     "Where was the ledger that had been stolen discovered?"),
    ("The new tram line to Eastfield will open on 3 March.", "When does the Eastfield tram start running?"),
    ("Wind turbine 6 was shut down after a blade cracked in the storm.", "What happened to turbine number 6?"),
    ("The poet Ines Albarran wrote her last collection in Lisbon.",
     "In which city did Albarran finish her final book?"),
    ("Our team's on-call rotation changes every Wednesday at noon.",
     "When does the on-call duty switch to the next person?"),
    ("The coral survey counted 212 parrotfish on the southern reef.",
     "How many parrotfish did the reef survey find in the south?"),
    ("Grandfather's pocket watch was made in Geneva in 1887.", "Where and when was the old pocket watch built?"),
    ("The chess club meets in room B14 on Thursday evenings.", "Where does the chess club gather?"),
    ("The cheese cave in Roquelle ages wheels for eighteen months.",
     "How long are cheeses matured in the Roquelle cave?"),
]


def corpus_text() -> str:
    """The checkout's prose (README, docstrings, man pages without roff), as filler around the facts."""
    import ast

    parts = [(REPO / "README.md").read_text()]
    for module in sorted((REPO / "llmtools").rglob("*.py")):
        tree = ast.parse(module.read_text())
        nodes = [tree, *(node for node in ast.walk(tree)
                         if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)))]
        parts += [doc for doc in (ast.get_docstring(node) for node in nodes) if doc and len(doc) > 80]
    for page in sorted((REPO / "man").glob("*.[15]")):
        text = page.read_text()
        text = re.sub(r"^\.\S+ ?", "", text, flags=re.M).replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
        parts.append(text.replace("\\fI", ""))
    return "\n\n".join(part for part in parts if part)


def planted_corpus(seed: int = 11) -> tuple[str, list[str]]:
    paragraphs = [p for p in corpus_text().split("\n\n") if p.strip()]
    rng = random.Random(seed)
    places = sorted(rng.sample(range(len(paragraphs)), len(FACTS)))
    for place, (fact, _) in zip(places, FACTS, strict=True):
        paragraphs[place] = paragraphs[place] + "\n" + fact
    return "\n\n".join(paragraphs), [fact for fact, _ in FACTS]


def evaluate(ranker, chunks, ks=(1, 3, 5, 10)) -> dict:
    hits = {k: 0 for k in ks}
    reciprocal = 0.0
    started = time.perf_counter()
    for fact, question in FACTS:
        ranked = ranker.rank(chunks, question)
        holding = {position for position, chunk in enumerate(chunks) if fact in chunk.text}
        place = next((n for n, position in enumerate(ranked) if position in holding), None)
        if place is not None:
            reciprocal += 1 / (place + 1)
            for k in ks:
                hits[k] += place < k
    seconds = time.perf_counter() - started
    return {"recall": {k: hits[k] / len(FACTS) for k in ks}, "mrr": reciprocal / len(FACTS), "seconds": seconds}


class CachedEmbeddings:
    """A model ranker whose chunk vectors are computed once for all questions (as a real
    index would keep them); only each question is embedded per query."""

    def __init__(self, name, embed):
        self.name, self.embed, self.rows = name, embed, None

    def rank(self, chunks, query):
        import numpy as np

        from llmtools.mapping.vectors import search

        if self.rows is None:
            self.rows = np.concatenate([self.embed([c.text for c in chunks[i:i + 16]])
                                        for i in range(0, len(chunks), 16)])
        return search(self.rows, self.embed([query])[0])


def candidates(args) -> list:
    from llmtools.mapping.embedders import FusedRanker, gguf_embed
    from llmtools.mapping.lexical import BM25Ranker, HashedRanker

    found = [BM25Ranker(), HashedRanker(), FusedRanker([BM25Ranker(), HashedRanker()])]
    if args.gguf:
        model = CachedEmbeddings("gguf", gguf_embed(args.gguf))
        found += [model, FusedRanker([BM25Ranker(), model])]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", metavar="PATH", help="also rank with this GGUF model's mean-pooled embeddings")
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    from llmtools.mapping.chunking import chunk_messages

    text, _ = planted_corpus()
    chunks = chunk_messages([{"role": "user", "content": text}], args.chunk_tokens)
    print(f"corpus: {len(text) / 1e3:.0f} kB, {len(chunks)} chunks of {args.chunk_tokens} tokens, "
          f"{len(FACTS)} planted facts", file=sys.stderr)
    rows = [(ranker.name, evaluate(ranker, chunks)) for ranker in candidates(args)]
    if args.markdown:
        print("| ranker | recall@1 | recall@3 | recall@5 | recall@10 | MRR | time for all queries |")
        print("|---|---|---|---|---|---|---|")
        for name, result in rows:
            recall = result["recall"]
            print(f"| {name} | {recall[1]:.2f} | {recall[3]:.2f} | {recall[5]:.2f} | {recall[10]:.2f} | "
                  f"{result['mrr']:.2f} | {result['seconds']:.2f} s |")
        return
    print(f"{'ranker':<14}{'r@1':>6}{'r@3':>6}{'r@5':>6}{'r@10':>6}{'MRR':>6}{'seconds':>9}")
    for name, result in rows:
        recall = result["recall"]
        print(f"{name:<14}{recall[1]:>6.2f}{recall[3]:>6.2f}{recall[5]:>6.2f}{recall[10]:>6.2f}"
              f"{result['mrr']:>6.2f}{result['seconds']:>9.2f}")


if __name__ == "__main__":
    main()
