"""What the model is told at each step of a map: deciding, mapping, reducing, answering."""

from __future__ import annotations

from llmtools.mapping.chunking import Chunk

NOTHING = "NOTHING"

ANSWER_SYSTEM = ("Answer from the excerpts of the content given. They are in document order; "
                 "text between them was left out.")

MAP_SYSTEM = ("You read one excerpt of a longer content at a time. Do what the instruction asks "
              "with this excerpt alone and reply with the result only. If the excerpt holds "
              f"nothing that bears on the instruction, reply with exactly: {NOTHING}")

REDUCE_SYSTEM = ("You are given partial answers, each made from one part of a longer content, in "
                 "document order. Combine them into one answer to the instruction: keep every "
                 "relevant fact, drop repeats, resolve overlaps.")

COMBINE_SYSTEM = ("You are given partial answers, each made from one part of a longer content, in "
                  "document order. Merge them into one partial answer that keeps every fact "
                  "relevant to the instruction; it will be merged with others later.")

DECIDE_SYSTEM = "You decide how a long content should be read. Reply with one word."

EACH_SYSTEM = ("Do what the instruction asks with the input given and reply with the result only: "
               "no preamble, no sign-off.")


def excerpt(chunk: Chunk, total: int) -> str:
    where = f' source="{chunk.source}"' if chunk.source else ""
    return f'<excerpt number="{chunk.index + 1}" of="{total}"{where}>\n{chunk.text}\n</excerpt>'


def decide_messages(samples: list[Chunk], total: int, instruction: str) -> list[dict]:
    shown = "\n\n".join(excerpt(chunk, total) for chunk in samples)
    return [{"role": "system", "content": DECIDE_SYSTEM},
            {"role": "user", "content":
                f"A content of {total} parts is too long to read at once. Here are {len(samples)} "
                f"sample parts:\n\n{shown}\n\nThe instruction is: {instruction}\n\n"
                "Does following the instruction need every part of the content (for example: "
                "summarise all of it, list or count every item), or only the few parts most "
                "related to it (for example: a question that one passage answers)? "
                "Reply ALL or SOME."}]


def wants_everything(reply: str) -> bool:
    words = reply.strip().upper().split()
    return bool(words) and words[0].strip(".,:;!*\"'") in ("ALL", "YES")


def answer_messages(chunks: list[Chunk], total: int, instruction: str,
                    system: str | None = None) -> list[dict]:
    body = "\n\n".join(excerpt(chunk, total) for chunk in chunks)
    return [{"role": "system", "content": system or ANSWER_SYSTEM},
            {"role": "user", "content": body},
            {"role": "user", "content": instruction}]


def map_messages(chunk: Chunk, total: int, instruction: str) -> list[dict]:
    return [{"role": "system", "content": MAP_SYSTEM},
            {"role": "user", "content": excerpt(chunk, total)},
            {"role": "user", "content": instruction}]


def is_nothing(text: str) -> bool:
    return text.strip().strip(".").upper() == NOTHING


def partials_text(partials: list[str]) -> str:
    return "\n\n".join(f"<partial number=\"{number}\">\n{text.strip()}\n</partial>"
                       for number, text in enumerate(partials, start=1))


def reduce_messages(partials: list[str], instruction: str, *, final: bool, system: str | None = None) -> list[dict]:
    """The caller's system text goes to the final call only, which gives the answer; it keeps
    the framing that says the parts are partial answers to combine."""
    body = partials_text(partials) if partials else "(no part of the content bore on the instruction)"
    framing = REDUCE_SYSTEM if final else COMBINE_SYSTEM
    return [{"role": "system", "content": f"{system}\n\n{framing}" if final and system else framing},
            {"role": "user", "content": body},
            {"role": "user", "content": instruction}]


def each_messages(item: dict, instruction: str) -> list[dict]:
    return [{"role": "system", "content": EACH_SYSTEM}, item, {"role": "user", "content": instruction}]
