"""Low-quality domains for the learning benchmark, generated deterministically from a seed.

- ``junk_base64``: base64 of uniformly random bytes (unlearnable beyond its 64-symbol
  alphabet: ~6 bits per byte of pure noise).
- ``junk_boiler``: one boilerplate document (a cookie/terms banner) copied over and over,
  with trivial variation (a number, a date, a site name).
- ``junk_neardup``: a handful of source documents, each copied many times with small random
  character edits (~2 % of characters substituted, deleted or inserted).

Each domain gets ``train.jsonl`` and ``val.jsonl`` made the same way (a user's junk domain
has an eval split drawn from the same source). Sizes are comparable to the real domains
(~1.5-2.5 MB of train text), so size-based sampling gets no free hint.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

JUNK_DOMAINS = ("junk_base64", "junk_boiler", "junk_neardup")

BOILER = (
    "We use cookies and similar technologies on {site} to provide, protect and improve our services, "
    "to show you personalised content and to measure the performance of our advertising. By clicking "
    "\"Accept all\" you agree to the storing of cookies on your device. You can change your preferences "
    "at any time by visiting the Privacy Centre. For more information please read our Cookie Policy and "
    "our Privacy Notice (last updated {date}). Reference number: {ref}. "
    "Terms of Service: by continuing to use this website you accept our terms and conditions, which "
    "govern your use of the site, its content and any related services. If you do not agree with any "
    "part of these terms you must not use the website. We may revise these terms at any time without "
    "notice; the current version is always available on this page. All rights reserved. Copyright "
    "{year} {site}. Subscribe to our newsletter to receive the latest news, offers and updates directly "
    "in your inbox. Unsubscribe at any time. Contact us: support@{site}. Follow us on social media.\n"
)
SITES = ["example.com", "shop.example.org", "news.example.net", "blog.example.io"]

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


def _near_dup_sources(rng: random.Random, n: int = 5) -> list[str]:
    docs = []
    for _ in range(n):
        paras = []
        for _ in range(rng.randint(5, 8)):
            sent = []
            for _ in range(rng.randint(4, 7)):
                ws = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
                sent.append(" ".join(ws).capitalize() + ".")
            paras.append(" ".join(sent))
        docs.append("\n\n".join(paras) + "\n")
    return docs


def _edit(rng: random.Random, text: str, rate: float = 0.02) -> str:
    out = []
    alphabet = "abcdefghijklmnopqrstuvwxyz ,."
    for ch in text:
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(alphabet))  # substitute
        elif r < 2 * rate / 3:
            continue  # delete
        elif r < rate:
            out.append(ch + rng.choice(alphabet))  # insert
        else:
            out.append(ch)
    return "".join(out)


def _docs(name: str, rng: random.Random, n: int, sources: list[str]) -> list[str]:
    if name == "junk_base64":
        return [base64.b64encode(rng.randbytes(rng.randint(600, 1500))).decode("ascii") for _ in range(n)]
    if name == "junk_boiler":
        return [
            BOILER.format(site=rng.choice(SITES), date=f"{rng.randint(1, 28)} March 20{rng.randint(10, 25)}",
                          ref=f"{rng.randint(0, 99999):05d}", year=2000 + rng.randint(10, 25))
            for _ in range(n)
        ]
    if name == "junk_neardup":
        return [_edit(rng, rng.choice(sources)) for _ in range(n)]
    raise ValueError(name)


def generate(out: Path, seed: int = 0, train_docs: int = 1600, val_docs: int = 160) -> dict[str, Path]:
    """Write the junk domains under ``out/<name>/{train,val}.jsonl``; returns {name: folder}."""
    dirs = {}
    for k, name in enumerate(JUNK_DOMAINS):
        rng = random.Random(seed * 1000 + k)
        sources = _near_dup_sources(random.Random(seed * 1000 + 99))
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train_docs), ("val", val_docs)):
            with (d / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                for i, text in enumerate(_docs(name, rng, n, sources)):
                    f.write(json.dumps({"id": f"{name}-{split}-{i}", "text": text}) + "\n")
        dirs[name] = d
    return dirs


if __name__ == "__main__":
    import sys

    for name, d in generate(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mixflow-junk")).items():
        print(name, d, (d / "train.jsonl").stat().st_size)
