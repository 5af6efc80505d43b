"""A zoo of data kinds for the learning benchmark's held-out protocol, deterministic from a seed.

Four families of low-quality domains (three or more kinds each) and one set of clean,
structured domains that must NOT be penalised (they join the real domains and the
objective). Every domain gets ``train.jsonl`` and ``val.jsonl`` made the same way, sized
like the real corpus domains (~1-3 MB of train text), so size gives no hint.

- ``noise`` (nothing to learn beyond an alphabet): hex of random bytes, random digit
  strings, character-shuffled real text (the real domains' own characters, in random order).
- ``repetition`` (little new content): 100 documents x 20 exact copies, 40 x 50 copies,
  near-duplicates with 2 %, 5 % and 10 % of characters edited (substituted, deleted,
  inserted), all in a seeded random order.
- ``irrelevant`` (clean, structured, learnable, and not what the objective measures; the
  protocol declares ``objective`` = the real + clean domains for these runs): integer
  arithmetic with correct answers, a toy formal language (a small grammar), and chess-like
  move lists from a rule-based walker.
- ``mixed`` (real documents of uneven quality): real documents with injected random
  lines, truncated and spliced documents, and documents with garbled spans.
- ``clean`` (structured, correct, must be served like real data): JSON-lines service logs,
  CSV tables with real content (words, numbers that add up), templated but correct Python.

Usage: ``python bench/learning/zoo.py OUT [--seed N] [--corpus DIR]`` writes
``OUT/<family>/<name>/{train,val}.jsonl``; ``generate_family`` does one family.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
from pathlib import Path

FAMILIES = {
    "noise": ("noise_hex", "noise_digits", "noise_shuffled"),
    "repetition": ("rep_copy20", "rep_copy50", "rep_edit2", "rep_edit5", "rep_edit10"),
    "irrelevant": ("irr_arith", "irr_grammar", "irr_moves"),
    "mixed": ("mix_noiselines", "mix_truncated", "mix_garbled"),
    "clean": ("clean_logs", "clean_csv", "clean_code"),
}
REAL = ("fortunes_en", "fortunes_de", "fortunes_es", "fortunes_zh", "code_python", "code_c", "man_pages",
        "changelogs", "licenses")
TRAIN_BYTES = 2_000_000
VAL_DOCS = 160

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if more no out so what up its into "
    "them time only can could new some these two may first then do any like my now over such our man me "
    "even most made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still own see men "
    "work long get here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three system water market report data "
    "value model process energy policy program service light level order early table north river"
).split()


def real_texts(corpus: Path, limit: int = 4000) -> list[str]:
    """Real documents, round-robin over the real domains' train splits (for shuffling and mixing)."""
    per = []
    for d in REAL:
        f = corpus / d / "train.jsonl"
        if not f.exists():
            raise SystemExit(f"{f}: not found (the zoo's shuffled and mixed kinds are made from the real corpus; pass --corpus)")
        with f.open(encoding="utf-8") as fh:
            per.append([json.loads(line)["text"] for _, line in zip(range(limit // len(REAL) + 1), fh)])
    out = []
    for i in range(max(len(p) for p in per)):
        out += [p[i] for p in per if i < len(p)]
    return out


def prose(rng: random.Random) -> str:
    paras = []
    for _ in range(rng.randint(3, 6)):
        sent = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "." for _ in range(rng.randint(3, 6))]
        paras.append(" ".join(sent))
    return "\n\n".join(paras) + "\n"


def edit(rng: random.Random, text: str, rate: float) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz ,."
    out = []
    for ch in text:
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(alphabet))
        elif r < 2 * rate / 3:
            continue
        elif r < rate:
            out.append(ch + rng.choice(alphabet))
        else:
            out.append(ch)
    return "".join(out)


def copies(rng: random.Random, unique: int, times: int, rate: float, target: int) -> list[str]:
    """`unique` source documents, each `times` times (edited at `rate`), shuffled; repeated to `target` bytes."""
    src = [prose(rng) for _ in range(unique)]
    docs = [edit(rng, s, rate) if rate > 0 else s for s in src for _ in range(times)]
    rng.shuffle(docs)
    total = sum(len(d) for d in docs)
    while total < target:  # more copies of the same sources, never new content
        extra = [edit(rng, s, rate) if rate > 0 else s for s in src]
        rng.shuffle(extra)
        docs += extra
        total += sum(len(d) for d in extra)
    return docs


def arith(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(20, 40)):
        a, b = rng.randint(0, 9999), rng.randint(0, 9999)
        op = rng.choice("+-*")
        c = a + b if op == "+" else a - b if op == "-" else a * b
        lines.append(f"{a} {op} {b} = {c}")
    return "\n".join(lines) + "\n"


NOUNS = "cat dog bird tree stone lamp ship road king queen robot cloud".split()
VERBS = "sees takes finds moves likes builds opens holds".split()
ADJS = "red small old quick quiet bright heavy round".split()


def grammar(rng: random.Random) -> str:
    def np_() -> str:
        return " ".join(["the"] + [rng.choice(ADJS) for _ in range(rng.randint(0, 2))] + [rng.choice(NOUNS)])

    sents = []
    for _ in range(rng.randint(15, 30)):
        s = f"{np_()} {rng.choice(VERBS)} {np_()}"
        if rng.random() < 0.3:
            s += f" because {np_()} {rng.choice(VERBS)} {np_()}"
        sents.append(s + " .")
    return "\n".join(sents) + "\n"


def moves(rng: random.Random) -> str:
    """Knight-walk 'games': each move is legal from the previous square (a learnable rule)."""
    out = []
    for g in range(rng.randint(4, 8)):
        f, r = rng.randint(0, 7), rng.randint(0, 7)
        ms = []
        for k in range(rng.randint(20, 40)):
            opts = [(f + a, r + b) for a, b in ((1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1))
                    if 0 <= f + a < 8 and 0 <= r + b < 8]
            f, r = rng.choice(opts)
            ms.append(f"{k + 1}.N{'abcdefgh'[f]}{r + 1}")
        out.append(f"[game {g}] " + " ".join(ms))
    return "\n".join(out) + "\n"


def noise_line(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(rng.randint(30, 90))).decode("ascii")


LEVELS = ("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG")
SERVICES = ("api", "auth", "billing", "search", "worker", "gateway")
PATHS = ("/v1/users", "/v1/orders", "/v1/search", "/healthz", "/v1/login", "/v1/items/{id}")


def logs(rng: random.Random) -> str:
    lines = []
    t = rng.randint(1_700_000_000, 1_800_000_000)
    for _ in range(rng.randint(15, 30)):
        t += rng.randint(0, 5)
        lvl = rng.choice(LEVELS)
        path = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 9999)))
        status = 200 if lvl in ("INFO", "DEBUG") else rng.choice((404, 429, 500, 503))
        ms = rng.randint(1, 900) if status == 200 else rng.randint(100, 5000)
        lines.append(json.dumps({"ts": t, "level": lvl, "service": rng.choice(SERVICES), "path": path, "status": status,
                                 "ms": ms, "msg": f"{'GET' if rng.random() < 0.7 else 'POST'} {path} -> {status} in {ms} ms"}))
    return "\n".join(lines) + "\n"


def csv_table(rng: random.Random) -> str:
    items = rng.sample(WORDS, 12)
    rows = ["item,quantity,unit_price,total"]
    grand = 0
    for it in items[: rng.randint(5, 12)]:
        q, p = rng.randint(1, 50), rng.randint(1, 500)
        rows.append(f"{it},{q},{p},{q * p}")
        grand += q * p
    rows.append(f"TOTAL,,,{grand}")
    return "\n".join(rows) + "\n"


def code(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(3, 6)):
        name = "_".join(rng.sample(WORDS, 2))
        args = rng.sample(["x", "y", "n", "items", "key", "limit"], rng.randint(1, 3))
        kind = rng.randrange(3)
        body = {
            0: f"    total = 0\n    for v in {args[0]}:\n        total += v\n    return total\n",
            1: f"    if {args[0]} is None:\n        raise ValueError(\"{args[0]} is required\")\n    return {args[0]}\n",
            2: f"    result = []\n    for i in range(len({args[0]})):\n        result.append({args[0]}[i] * 2)\n    return result\n",
        }[kind]
        out.append(f"def {name}({', '.join(args)}):\n    \"\"\"Return the {name.replace('_', ' ')} of {args[0]}.\"\"\"\n{body}")
    return "\n\n".join(out)


def make_docs(name: str, rng: random.Random, target: int, reals: list[str]) -> list[str]:
    if name.startswith("rep_"):
        spec = {"rep_copy20": (100, 20, 0.0), "rep_copy50": (40, 50, 0.0), "rep_edit2": (100, 20, 0.02),
                "rep_edit5": (100, 20, 0.05), "rep_edit10": (100, 20, 0.10)}[name]
        return copies(rng, *spec, target)
    docs: list[str] = []
    total = 0
    while total < target:
        if name == "noise_hex":
            d = rng.randbytes(rng.randint(300, 800)).hex()
        elif name == "noise_digits":
            d = "".join(rng.choice("0123456789") for _ in range(rng.randint(600, 1600)))
        elif name == "noise_shuffled":
            chars = list(rng.choice(reals)[:1500])
            rng.shuffle(chars)
            d = "".join(chars)
        elif name == "irr_arith":
            d = arith(rng)
        elif name == "irr_grammar":
            d = grammar(rng)
        elif name == "irr_moves":
            d = moves(rng)
        elif name == "mix_noiselines":
            lines = rng.choice(reals).split("\n")
            d = "\n".join(x for ln in lines for x in ([ln, noise_line(rng)] if rng.random() < 0.4 else [ln]))
        elif name == "mix_truncated":
            a, b = rng.choice(reals), rng.choice(reals)
            d = a[: rng.randint(20, max(21, len(a) // 3))] + b[rng.randint(0, max(1, len(b) // 2)):][: rng.randint(20, 400)]
        elif name == "mix_garbled":
            t = list(rng.choice(reals))
            for _ in range(max(1, len(t) // 200)):
                i = rng.randrange(max(1, len(t)))
                span = t[i: i + rng.randint(20, 80)]
                rng.shuffle(span)
                t[i: i + len(span)] = span
            d = "".join(t)
        elif name == "clean_logs":
            d = logs(rng)
        elif name == "clean_csv":
            d = csv_table(rng)
        elif name == "clean_code":
            d = code(rng)
        else:
            raise ValueError(name)
        docs.append(d)
        total += len(d.encode("utf-8"))
    return docs


def generate_family(out: Path, family: str, seed: int = 0, corpus: Path | None = None) -> dict[str, Path]:
    """Write one family's domains under ``out/<name>/{train,val}.jsonl``; returns {name: folder}."""
    needs_real = family in ("noise", "mixed")
    reals = real_texts(corpus) if needs_real and corpus else []
    if needs_real and not reals:
        raise SystemExit(f"zoo family {family!r} needs --corpus (real documents to shuffle or mix)")
    dirs = {}
    for k, name in enumerate(FAMILIES[family]):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed * 100_003 + k * 7919 + sum(map(ord, name)))
        docs = make_docs(name, rng, TRAIN_BYTES + TRAIN_BYTES // 10, reals)
        # The eval split is drawn from the same generator (as a user's junk domain would be):
        # for repetition kinds it shares their copies.
        n_val = min(VAL_DOCS, max(1, len(docs) // 10))
        for split, part in (("train", docs[n_val:]), ("val", docs[:n_val])):
            with (d / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                for i, text in enumerate(part):
                    f.write(json.dumps({"id": f"{name}-{split}-{i}", "text": text}) + "\n")
        dirs[name] = d
    return dirs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "corpus")
    p.add_argument("--families", default=",".join(FAMILIES))
    a = p.parse_args()
    for fam in a.families.split(","):
        for name, d in generate_family(a.out / fam, fam, a.seed, a.corpus).items():
            print(fam, name, (d / "train.jsonl").stat().st_size)


if __name__ == "__main__":
    main()
