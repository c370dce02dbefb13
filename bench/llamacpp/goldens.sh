#!/usr/bin/env bash
# Regenerates testdata/llamacpp/* (llama.cpp golden outputs for stories260K)
# with the binaries that build.sh makes. Deterministic: CPU only, greedy.
#
# Usage: bench/llamacpp/goldens.sh
# Env:   ARMOR_LLAMACPP_DIR (as build.sh), ARMOR_TESTDATA (default ../shared/testdata)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TD="${ARMOR_TESTDATA:-$ROOT/../shared/testdata}"
MODEL="$TD/models/stories260K.gguf"
VAL="$TD/text/tinystories_val_subset.txt"
OUT="$ROOT/testdata/llamacpp"
BIN="$("$HERE/build.sh" | tail -n 1)"
SRC="$(cd "$BIN/../.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
for f in "$MODEL" "$VAL"; do [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }; done

# fd 3 = the script's stderr, so the trace survives the commands' own redirections.
exec 3>&2
run() { echo "+ $*" >&3; "$@"; }

# --- a. greedy continuation --------------------------------------------------
PROMPT="Once upon a time"
run nice "$BIN/armor-oracle" -m "$MODEL" -n 48 -t 1 -c 512 -k 5 --all-logits "$PROMPT" > "$TMP/g1.json"
run nice "$BIN/armor-oracle" -m "$MODEL" -n 48 -t 2 -c 512 -k 5 --all-logits "$PROMPT" > "$TMP/g2.json"
# Cross-check with stock tools: llama-simple (greedy sampler, prints prompt +
# continuation) and llama-completion with --temp 0 (greedy), no chat template.
run "$BIN/llama-simple" -m "$MODEL" -n 48 "$PROMPT" > "$TMP/simple.txt" 2> "$TMP/simple.err"
COMPLETION_CMD=(llama-completion -m stories260K.gguf -p "$PROMPT" -n 48 --temp 0 -t 1 -c 512 -no-cnv --no-warmup --seed 1)
run "$BIN/llama-completion" -m "$MODEL" -p "$PROMPT" -n 48 --temp 0 -t 1 -c 512 -no-cnv --no-warmup --seed 1 \
  < /dev/null > "$TMP/completion.txt" 2> "$TMP/completion.err" || true

# --- a. tokenizer ids --------------------------------------------------------
PROMPTS=(
  "Once upon a time"
  "Lily and Tom went to the park."
  "In 2024, Tom had 3 cats and 12 dogs; café naïve 日本 🙂!"
  $'  Two leading spaces,\ttab and\nnewline.'
  "Hello world"
)
: > "$TMP/tok.tsv"
for p in "${PROMPTS[@]}"; do
  ids=$(printf '%s' "$p" | "$BIN/llama-tokenize" -m "$MODEL" --stdin --ids --no-escape --log-disable 2>/dev/null | tail -n 1)
  nobos=$(printf '%s' "$p" | "$BIN/llama-tokenize" -m "$MODEL" --stdin --ids --no-escape --no-bos --log-disable 2>/dev/null | tail -n 1)
  printf '%s\t%s\t%s\n' "$(printf '%s' "$p" | base64 -w0)" "$ids" "$nobos" >> "$TMP/tok.tsv"
done
# The perplexity tool strips ONE trailing '\n' from the -f file and reads it
# with escapes off; tokenize that exact string to count the tokens it sees.
python3 - "$VAL" "$TMP/val.txt" "$TMP/val200k.txt" "$TMP/val200k_ppl.txt" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
strip = lambda b: b[:-1] if b.endswith(b'\n') else b
open(sys.argv[2], 'wb').write(strip(data))
open(sys.argv[3], 'wb').write(data[:200000])
open(sys.argv[4], 'wb').write(strip(data[:200000]))
PY
"$BIN/llama-tokenize" -m "$MODEL" -f "$TMP/val.txt" --ids --no-escape --log-disable 2>/dev/null | tail -n 1 > "$TMP/val_ids.txt"
"$BIN/llama-tokenize" -m "$MODEL" -f "$TMP/val200k_ppl.txt" --ids --no-escape --log-disable 2>/dev/null | tail -n 1 > "$TMP/val200k_ids.txt"

# --- b. perplexity -----------------------------------------------------------
# On 2 busy cores the full file takes ~5 min per run (~1000 tokens/s), so it
# is run once, with --ppl-output-type 1 (cumulative PPL and mean NLL to 6
# decimals per chunk); the 200k slice is run in both output types, and with 1
# and 2 threads to check that the thread count does not change the result.
run nice "$BIN/llama-perplexity" -m "$MODEL" -f "$VAL" -c 256 -t 2 --ppl-output-type 1 > "$TMP/ppl_full_type1.out" 2> "$TMP/ppl_full_type1.err"
run nice "$BIN/llama-perplexity" -m "$MODEL" -f "$TMP/val200k.txt" -c 256 -t 2 > "$TMP/ppl_200k.out" 2> "$TMP/ppl_200k.err"
run nice "$BIN/llama-perplexity" -m "$MODEL" -f "$TMP/val200k.txt" -c 256 -t 1 > "$TMP/ppl_200k_t1.out" 2> "$TMP/ppl_200k_t1.err"
run nice "$BIN/llama-perplexity" -m "$MODEL" -f "$TMP/val200k.txt" -c 256 -t 2 --ppl-output-type 1 > "$TMP/ppl_200k_type1.out" 2> "$TMP/ppl_200k_type1.err"
run nice "$BIN/armor-oracle" -m "$MODEL" -c 256 -t 2 --ppl "$TMP/val200k.txt" > "$TMP/oracle_ppl_200k.json"

# --- c/d. assemble the golden files -------------------------------------------
VERSION_LINE=$("$BIN/llama-perplexity" --version 2>&1 | head -n 2 | tr '\n' ' ')
python3 - "$TMP" "$OUT" "$SRC" "$PROMPT" "$VERSION_LINE" "$MODEL" "$VAL" <<'PY'
import base64, datetime, hashlib, json, os, re, subprocess, sys
tmp, out, src, prompt, version_line, model, val = sys.argv[1:8]
rd = lambda n: open(os.path.join(tmp, n), encoding='utf-8', errors='replace').read()
sha = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest()

def enc(o, ind=''):
    """JSON with lists of scalars on one line and lists of lists one row a line: small and diffable."""
    if isinstance(o, dict):
        items = [f'{ind} {json.dumps(k)}: {enc(v, ind + " ")}' for k, v in o.items()]
        return '{\n' + ',\n'.join(items) + '\n' + ind + '}'
    if isinstance(o, list) and o and all(isinstance(x, list) for x in o):
        return '[\n' + ',\n'.join(ind + '  ' + json.dumps(x) for x in o) + '\n' + ind + ']'
    if isinstance(o, list) and any(isinstance(x, dict) for x in o):
        return '[\n' + ',\n'.join(ind + '  ' + enc(x, ind + '  ') for x in o) + '\n' + ind + ']'
    return json.dumps(o, ensure_ascii=False)
def dump(o, name):
    open(os.path.join(out, name), 'w', encoding='utf-8').write(enc(o) + '\n')

g1, g2 = json.loads(rd('g1.json')), json.loads(rd('g2.json'))
assert g1['generated_ids'] == g2['generated_ids'], 'greedy ids differ between 1 and 2 threads'
assert g1['text'] == g2['text']
simple = rd('simple.txt').rstrip('\n')
# llama-simple prints the prompt's pieces with specials ("<s> Once upon...").
assert (prompt + g1['text']) in simple, f'llama-simple disagrees: {simple!r} vs {prompt + g1["text"]!r}'
comp = rd('completion.txt')
g = dict(g1)
g['threads_checked'] = [1, 2]
g['logits_bitwise_equal_1_vs_2_threads'] = g1['logits_after_prompt'] == g2['logits_after_prompt']
g['max_abs_logit_diff_1_vs_2_threads'] = max(abs(a - b) for a, b in zip(g1['logits_after_prompt'], g2['logits_after_prompt']))
g['llama_simple_stdout'] = simple
g['llama_completion_stdout'] = comp
# llama-completion prints through common_log's worker thread, which can lose
# the tail of the output at exit on a busy machine: check it as a prefix.
comp_s = comp.strip()
assert comp_s and (prompt + g1['text']).startswith(comp_s), f'llama-completion disagrees: {comp!r}'
g['llama_completion_agrees_as_prefix'] = True
g['command'] = f'armor-oracle -m stories260K.gguf -n 48 -t 1 -c 512 -k 5 --all-logits {json.dumps(prompt)}'
g['cross_check_commands'] = [
    f'llama-simple -m stories260K.gguf -n 48 {json.dumps(prompt)}',
    f'llama-completion -m stories260K.gguf -p {json.dumps(prompt)} -n 48 --temp 0 -t 1 -c 512 -no-cnv --no-warmup --seed 1',
]
dump(g, 'greedy_once_upon_a_time.json')

toks = []
for line in rd('tok.tsv').splitlines():
    b64, ids, nobos = line.split('\t')
    toks.append({'text': base64.b64decode(b64).decode('utf-8'), 'ids_with_bos': json.loads(ids), 'ids_no_bos': json.loads(nobos)})
val_ids = json.loads(rd('val_ids.txt'))
v200_ids = json.loads(rd('val200k_ids.txt'))
def ids_sha(ids): return hashlib.sha256(','.join(map(str, ids)).encode()).hexdigest()
tokfile = {
    'command': 'printf %s TEXT | llama-tokenize -m stories260K.gguf --stdin --ids --no-escape --log-disable [--no-bos]',
    'prompts': toks,
    'perplexity_inputs': [
        {'file': 'text/tinystories_val_subset.txt', 'bytes': 'whole file minus its one trailing newline (as llama-perplexity -f reads it)',
         'n_tokens': len(val_ids), 'first_300_ids': val_ids[:300], 'last_20_ids': val_ids[-20:],
         'sha256_of_ids_joined_by_comma': ids_sha(val_ids)},
        {'file': 'first 200000 bytes of text/tinystories_val_subset.txt', 'bytes': 'first 200000 bytes (ends in "and ", no trailing newline)',
         'n_tokens': len(v200_ids), 'first_300_ids': v200_ids[:300], 'last_20_ids': v200_ids[-20:],
         'sha256_of_ids_joined_by_comma': ids_sha(v200_ids)},
    ],
}
dump(tokfile, 'tokens.json')

def ppl(name, n_tokens, cmd):
    o0, e0 = rd(name + '.out'), rd(name + '.err')
    both = o0 + e0
    m = re.search(r'Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)', both)
    c = re.search(r'calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), n_seq=(\d+)', both)
    chunks = [float(x) for x in re.findall(r'\[\d+\]([0-9.]+),', both)]
    n_chunks, n_ctx = int(c.group(1)), int(c.group(2))
    return {'command': cmd, 'ppl': float(m.group(1)), 'ppl_stderr': float(m.group(2)),
            'n_tokens': n_tokens, 'n_chunks': n_chunks, 'n_ctx': n_ctx, 'batch_size': int(c.group(3)), 'n_seq': int(c.group(4)),
            'n_scored_tokens': n_chunks * (n_ctx - n_ctx // 2 - 1),
            'cumulative_ppl_per_chunk': chunks}
def table(name):
    # --ppl-output-type 1 rows: "%8d  %.4lf  %4lf  %4lf" = i*n_ctx (i = index of the
    # group of n_seq chunks, so it repeats: not useful), cumulative PPL, cumulative
    # mean NLL, its standard error. Kept as [cum_ppl, cum_mean_nll, cum_nll_stderr].
    rows = []
    for line in rd(name + '.out').splitlines() + rd(name + '.err').splitlines():
        f = line.split()
        if len(f) == 4 and re.fullmatch(r'\d+', f[0]):
            rows.append([float(f[1]), float(f[2]), float(f[3])])
    return rows
full = ppl('ppl_full_type1', len(val_ids), 'llama-perplexity -m stories260K.gguf -f tinystories_val_subset.txt -c 256 -t 2 --ppl-output-type 1')
full['per_chunk_cum_ppl_mean_nll_stderr'] = table('ppl_full_type1')
del full['cumulative_ppl_per_chunk']  # type 1 prints no [k] list; column 0 above has it
assert len(full['per_chunk_cum_ppl_mean_nll_stderr']) == full['n_chunks']
part = ppl('ppl_200k', len(v200_ids), 'head -c 200000 tinystories_val_subset.txt > val200k.txt; llama-perplexity -m stories260K.gguf -f val200k.txt -c 256 -t 2')
t1 = ppl('ppl_200k_t1', len(v200_ids), '')
assert len(part['cumulative_ppl_per_chunk']) == part['n_chunks']
part['same_with_1_thread'] = (t1['ppl'] == part['ppl'] and t1['cumulative_ppl_per_chunk'] == part['cumulative_ppl_per_chunk'])
part['stdout_chunk_line'] = next(l for l in rd('ppl_200k.out').splitlines() if l.startswith('[1]'))
part['per_chunk_cum_ppl_mean_nll_stderr'] = table('ppl_200k_type1')
# Full-precision per-chunk NLL sums from armor-oracle --ppl (same algorithm, one
# chunk per decode); checked here against llama-perplexity's own figures.
o = json.loads(rd('oracle_ppl_200k.json'))
assert o['n_tokens'] == part['n_tokens'] and o['n_chunks'] == part['n_chunks']
assert abs(o['ppl'] - part['ppl']) <= 0.00005 + 1e-9, (o['ppl'], part['ppl'])
cum, tot = [], 0.0
for k, sN in enumerate(o['chunk_nll_sums']):
    tot += sN
    cum.append(tot / ((k + 1) * o['scored_per_chunk']))
worst = max(abs(a - r[1]) for a, r in zip(cum, part['per_chunk_cum_ppl_mean_nll_stderr']))
assert worst <= 1.5e-6, worst
part['oracle_per_chunk'] = {
    'command': 'armor-oracle -m stories260K.gguf -c 256 -t 2 --ppl val200k.txt',
    'mean_nll': o['mean_nll'], 'ppl': o['ppl'], 'ppl_stderr': o['ppl_stderr'],
    'max_abs_diff_cum_mean_nll_vs_llama_perplexity': worst,
    'chunk_nll_sums': o['chunk_nll_sums'],
}
dump({'model': 'stories260K.gguf', 'model_sha256': sha(model), 'text_sha256': sha(val), 'full': full, 'first_200000_bytes': part},
     'perplexity_c256.json')

commit = subprocess.run(['git', '-C', src, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
sysinfo = re.search(r'system_info: (.*)', rd('ppl_200k.err'))
info = {
    'source': 'npm node-llama-cpp@3.21.1, node_modules/node-llama-cpp/llama/gitRelease.bundle (llama.cpp release tag v0.4.0 per llama.cpp.info.json; one squashed commit, so build number 1)',
    'llama_cpp_commit': commit, 'llama_cpp_version_cmake': '0.4.0-dev', 'version_output': version_line.strip(),
    'build': 'cmake Release, CPU only, static, GGML_NATIVE=ON (see bench/llamacpp/build.sh); node-llama-cpp patch PR-22566 NOT applied (virtual-model loading only)',
    'system_info': sysinfo.group(1).strip() if sysinfo else None,
    'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
    'model_sha256': sha(model), 'val_text_sha256': sha(val),
    'regenerate': 'bench/llamacpp/goldens.sh',
}
dump(info, 'version.json')
PY
echo "wrote $(ls "$OUT")" >&2
