#!/usr/bin/env python3
"""Extract plain text from documentation/corpus files and normalise it like text8.

Usage: normalize.py --format FMT FILE... > out.txt      (FILE may be .gz/.dz; '-' = stdin)

Normalisation (as text8): Unicode NFKD, combining marks (accents) dropped, lower
case, every run of characters outside a-z becomes one space.  Output has one
paragraph per line (paragraphs = blank-line separated blocks of the extracted
text), long paragraphs split every 1000 words; empty paragraphs are dropped.

Formats (cheap, heuristic extraction; the goal is running English, not fidelity):
  text     plain text                      html   HTML (script/style dropped, tags stripped)
  rst      reStructuredText (directives/roles dropped)
  man      roff man pages (macro names and escapes dropped, arguments kept)
  pod      Perl POD (=commands dropped, X<...> codes unwrapped)
  fortune  fortune files ('%' lines separate paragraphs)
  wordnet  WordNet data.* files (glosses only)
  brown    tagged Brown corpus (word/tag tokens -> word)
  jsonlist JSON file holding a list of strings (one paragraph each)
  rdb      R lazy-load database (.rdb) of character vectors (e.g. janeaustenr);
           parsed directly (zlib + XDR serialisation), no R needed

Stdlib only.
"""
import argparse
import gzip
import html
import json
import re
import struct
import sys
import unicodedata
import zlib

WORDS_PER_LINE = 1000
_NONLETTER = re.compile(r"[^a-z]+")


def normalize(s):
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return _NONLETTER.sub(" ", s.lower()).strip()


def read_bytes(path):
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # .gz and dictzip .dz
        data = gzip.decompress(data)
    return data


def read_text(path):
    return read_bytes(path).decode("utf-8", errors="replace")


# ---------------------------------------------------------------- extractors
_SCRIPT = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BLOCK = re.compile(r"</?(p|div|br|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|pre|section|blockquote|title)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")


def ex_html(t):
    t = _COMMENT.sub(" ", _SCRIPT.sub(" ", t))
    t = _BLOCK.sub("\n\n", t)
    t = _TAG.sub(" ", t)
    return html.unescape(t)


_RST_ROLE = re.compile(r":[a-zA-Z:_-]+:`")
_RST_DIRECTIVE = re.compile(r"^\s*\.\. ")


def ex_rst(t):
    out = []
    for line in t.splitlines():
        if _RST_DIRECTIVE.match(line):
            out.append("")
            continue
        if line.strip() and len(set(line.strip())) == 1 and not line.strip()[0].isalnum():
            out.append("")  # section underline
            continue
        out.append(_RST_ROLE.sub("`", line))
    return "\n".join(out)


_ROFF_ESC = re.compile(r"\\(f(\(..|\[[^\]]*\]|.)|\(..|\[[^\]]*\]|\*(\(..|\[[^\]]*\]|.)|s[+-]?\d+|n(\(..|\[[^\]]*\]|.)|.)")
_ROFF_TEXT_MACROS = {"SH", "SS", "B", "I", "BR", "RB", "BI", "IB", "IR", "RI", "SM", "SB", "TP", "IP", "UR", "MT",
                     "Nm", "Nd", "Sh", "Ss", "Dl", "It", "Em", "Ar", "Fl", "Pa", "Xr"}


def ex_man(t):
    out = []
    for line in t.splitlines():
        if line.startswith((".", "'")):
            parts = line[1:].split(None, 1)
            if not parts:
                continue
            if parts[0] in ("PP", "LP", "P", "SH", "SS", "sp", "TP", "IP"):
                out.append("")
            if parts[0] in _ROFF_TEXT_MACROS and len(parts) > 1:
                out.append(_ROFF_ESC.sub(" ", parts[1]).replace('"', " "))
            continue
        out.append(_ROFF_ESC.sub(" ", line))
    return "\n".join(out)


_POD_CODE = re.compile(r"[A-Z]<+\s?")


def ex_pod(t):
    out = []
    for line in t.splitlines():
        if line.startswith("="):
            cmd = line.split(None, 1)
            out.append("")
            if cmd[0] in ("=head1", "=head2", "=head3", "=head4", "=item") and len(cmd) > 1:
                out.append(_POD_CODE.sub(" ", cmd[1]))
                out.append("")
            continue
        if line[:1] in (" ", "\t"):  # verbatim (code) paragraph
            continue
        out.append(_POD_CODE.sub(" ", line))
    return "\n".join(out)


def ex_fortune(t):
    return re.sub(r"(?m)^%\s*$", "\n", t)


def ex_wordnet(t):
    out = []
    for line in t.splitlines():
        if line.startswith("  "):  # license header
            continue
        i = line.find(" | ")
        if i >= 0:
            out.append(line[i + 3:])
            out.append("")
    return "\n".join(out)


def ex_brown(t):
    out = []
    for line in t.splitlines():
        if not line.strip():
            out.append("")
            continue
        out.append(" ".join(tok.rsplit("/", 1)[0] for tok in line.split()))
    return "\n".join(out)


def ex_jsonlist(t):
    data = json.loads(t)
    return "\n\n".join(x for x in data if isinstance(x, str))


def _r_strings(blob):
    """Yield the strings of every STRSXP in an XDR ('X\\n') R serialisation."""
    if blob[:2] != b"X\n":
        return
    pos = 0
    while True:
        pos = blob.find(b"\x00\x00\x00\x10", pos)  # STRSXP, no attributes
        if pos < 0 or pos + 8 > len(blob):
            return
        (n,) = struct.unpack(">i", blob[pos + 4:pos + 8])
        p = pos + 8
        good = []
        for _ in range(max(n, 0)):
            if p + 8 > len(blob):
                break
            flags, ln = struct.unpack(">Ii", blob[p:p + 8])
            if flags & 0xFF != 9:  # not a CHARSXP: false match
                break
            p += 8
            if ln < 0:  # NA_STRING
                good.append("")
                continue
            good.append(blob[p:p + ln].decode("utf-8", errors="replace"))
            p += ln
        if n > 0 and len(good) == n:
            yield from good
            pos = p
        else:
            pos += 4


def ex_rdb_bytes(data):
    out = []
    i = 0
    while i + 4 < len(data):
        d = zlib.decompressobj()
        try:
            blob = d.decompress(data[i + 4:])
        except zlib.error:
            break
        used = len(data) - i - 4 - len(d.unused_data)
        out.extend(_r_strings(blob))
        out.append("")
        i += 4 + used
    return "\n".join(out)


EXTRACT = {
    "text": lambda t: t,
    "html": ex_html,
    "rst": ex_rst,
    "man": ex_man,
    "pod": ex_pod,
    "fortune": ex_fortune,
    "wordnet": ex_wordnet,
    "brown": ex_brown,
    "jsonlist": ex_jsonlist,
}


def emit(text, out):
    n = 0
    for para in re.split(r"\n\s*\n", text):
        words = normalize(para).split()
        for k in range(0, len(words), WORDS_PER_LINE):
            out.write(" ".join(words[k:k + WORDS_PER_LINE]))
            out.write("\n")
        n += len(words)
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", required=True, choices=sorted(EXTRACT) + ["rdb"])
    ap.add_argument("--files-from", help="read file names (one per line) from this file")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = list(a.files)
    if a.files_from:
        with open(a.files_from) as f:
            files += [l.rstrip("\n") for l in f if l.strip()]
    out = sys.stdout
    total = 0
    for path in files:
        try:
            if a.format == "rdb":
                text = ex_rdb_bytes(read_bytes(path))
            else:
                text = EXTRACT[a.format](read_text(path))
        except Exception as e:  # one bad file must not sink a source
            print(f"normalize.py: skipping {path}: {e}", file=sys.stderr)
            continue
        total += emit(text, out)
    print(f"normalize.py: {a.format}: {len(files)} files, {total} words", file=sys.stderr)


if __name__ == "__main__":
    main()
