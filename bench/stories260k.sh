# Sourced by bench/quality.sh and bench/seqshard.sh: the stories260K model
# and the TinyStories texts they calibrate on and evaluate with, and the
# perplexity measurement both report. Needs root (the repository) and
# script (the caller's name, for messages) set; sets td, src, train, val
# and defines setup_run, eval_ppl and perplexity_of.
td=${ARMOR_TESTDATA:-$root/../shared/testdata}
src=$td/models/stories260K.gguf
train=$td/text/tinystories_train_subset.txt
val=$td/text/tinystories_val_subset.txt
for f in "$src" "$train" "$val"; do
	[[ -f $f ]] || { echo "$script: $f not found (set ARMOR_TESTDATA)" >&2; exit 1; }
done

# setup_run: THREADS, SEED, CALIB_TOKENS and OUT (default: a new temporary
# folder) into threads, seed, ctoks and out, and armor-convert and
# armor-bench built into bin ($out/bin).
setup_run() {
	threads=${THREADS:-$(nproc)}
	seed=${SEED:-1}
	ctoks=${CALIB_TOKENS:-40960}
	out=${OUT:-$(mktemp -d)}
	bin=$out/bin
	mkdir -p "$bin"
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/armor-convert ./cmd/armor-bench)
}

# eval_ppl BIN MODEL THREADS: armor-bench ppl's JSON report for MODEL on the
# first 200,000 bytes of the validation text, 256-token windows.
eval_ppl() {
	"$1/armor-bench" ppl -m "$2" --text "$val" --ctx 256 --max-bytes 200000 --threads "$3" --json
}

# perplexity_of: the perplexity field of an eval_ppl report on stdin.
perplexity_of() { sed -n 's/.*"perplexity":\([-0-9.eE+]*\).*/\1/p'; }
