package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// FindLlamaBench resolves a llama-bench binary from a path that is the
// binary itself or a folder holding it (directly, in bin/ or build/bin/).
func FindLlamaBench(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("llama.cpp: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, sub := range []string{"llama-bench", "bin/llama-bench", "build/bin/llama-bench"} {
		p := filepath.Join(path, sub)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("llama.cpp: no llama-bench in %s (build it with bench/llamacpp/build.sh)", path)
}

// llamaBenchRow is the part of llama-bench's JSON output we read.
type llamaBenchRow struct {
	NPrompt   int     `json:"n_prompt"`
	NGen      int     `json:"n_gen"`
	AvgTS     float64 `json:"avg_ts"`
	ModelSize int64   `json:"model_size"`
	ModelType string  `json:"model_type"`
	Build     string  `json:"build_commit"`
	Threads   int     `json:"n_threads"`
}

// RunLlamaBench times llama.cpp's prefill (pp) and decode (tg) on gguf with
// llama-bench. Decode runs at depth prompt (-d), after that many cached
// positions, as ours does after its prompt: llama-bench's plain tg test
// decodes into an empty cache, where attention costs almost nothing. A
// llama-bench too old for -d is run without it, and DecodeDepth says 0.
// Failures come back in the result's Error, so a table can still be
// printed.
func RunLlamaBench(path, gguf string, prompt, gen, threads, repeat int) SpeedResult {
	r := SpeedResult{Model: gguf, Variant: "llama.cpp", Threads: threads, PromptTokens: prompt, GenTokens: gen, DecodeDepth: prompt}
	r.Environment()
	r.ISA = "llama.cpp"
	bin, err := FindLlamaBench(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	common := []string{"-m", gguf, "-t", strconv.Itoa(threads), "-r", strconv.Itoa(max(1, repeat)), "-o", "json"}
	pp, err := runLlamaBench(bin, append([]string{"-p", strconv.Itoa(prompt), "-n", "0"}, common...))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	tg, err := runLlamaBench(bin, append([]string{"-p", "0", "-n", strconv.Itoa(gen), "-d", strconv.Itoa(prompt)}, common...))
	if err != nil && prompt > 0 {
		tg, err = runLlamaBench(bin, append([]string{"-p", "0", "-n", strconv.Itoa(gen)}, common...))
		r.DecodeDepth = 0
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	for _, row := range append(pp, tg...) {
		switch {
		case row.NPrompt > 0 && row.NGen == 0:
			r.PrefillTPS = row.AvgTS
		case row.NGen > 0 && row.NPrompt == 0:
			r.DecodeTPS = row.AvgTS
		}
		r.WeightBytes = row.ModelSize
		r.DType = strings.ToLower(lastField(row.ModelType))
		if row.Build != "" {
			r.ISA = "llama.cpp " + row.Build
		}
	}
	return r
}

// runLlamaBench runs llama-bench with args and reads its JSON rows.
func runLlamaBench(bin string, args []string) ([]llamaBenchRow, error) {
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return nil, fmt.Errorf("%s did not run: %v %s", bin, err, msg)
	}
	return ParseLlamaBench(out.Bytes())
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// ParseLlamaBench reads llama-bench's -o json output.
func ParseLlamaBench(b []byte) ([]llamaBenchRow, error) {
	var rows []llamaBenchRow
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("llama.cpp: cannot read llama-bench's JSON output: %v", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("llama.cpp: llama-bench printed no results")
	}
	return rows, nil
}
