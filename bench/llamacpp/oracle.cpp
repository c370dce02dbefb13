// armor-oracle: greedy generation and raw logits from llama.cpp's libllama,
// printed as JSON, for armor's golden tests. Built by build.sh against the
// llama.cpp source that node-llama-cpp ships; never part of the Go build.
//
// Why not a stock tool: llama-simple and llama-completion print text only, and
// text does not round-trip to token ids; none prints the logits. This program
// does the same as llama-simple (tokenize with BOS, decode the prompt as one
// batch, then one token per decode, argmax of the last logits) and prints the
// ids, the text, every step's winning logit and the margin to the runner-up
// (a small margin means a float-level difference may legitimately flip the
// choice), and the full logit vector after the prompt.
//
// usage: armor-oracle -m model.gguf [-n 48] [-t 1] [-c 512] [-k 5] [--all-logits] PROMPT
//        armor-oracle -m model.gguf -c 256 [-t 1] --ppl FILE
//
// --ppl replays llama-perplexity's default algorithm (see
// testdata/llamacpp/README.md) one chunk at a time and prints each chunk's NLL
// sum at full precision, which llama-perplexity does not (it prints only the
// running perplexity, to 4 decimals).
#include "llama.h"

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <numeric>
#include <string>
#include <vector>

static std::string json_str(const std::string & s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':  o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n";  break;
            case '\r': o += "\\r";  break;
            case '\t': o += "\\t";  break;
            default:
                if (c < 0x20) {
                    char b[8];
                    snprintf(b, sizeof b, "\\u%04x", c);
                    o += b;
                } else {
                    o += (char) c;
                }
        }
    }
    return o + "\"";
}

static std::string piece(const llama_vocab * vocab, llama_token id) {
    char buf[256];
    int n = llama_token_to_piece(vocab, id, buf, sizeof buf, 0, /*special=*/true);
    return n < 0 ? std::string() : std::string(buf, n);
}

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN) {
        fputs(text, stderr);
    }
}

// Same steps as perplexity() in tools/perplexity/perplexity.cpp with
// --ppl-stride 0, but one chunk per decode instead of n_batch/n_ctx chunks
// as parallel sequences.
static int run_ppl(llama_model * model, const llama_vocab * vocab, const std::string & path, int n_ctx, int n_threads) {
    std::ifstream in(path, std::ios::binary);
    if (!in) { fprintf(stderr, "cannot read %s\n", path.c_str()); return 1; }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (!text.empty() && text.back() == '\n') text.pop_back();  // as common's -f does

    int n = -llama_tokenize(vocab, text.c_str(), text.size(), nullptr, 0, true, false);
    std::vector<llama_token> toks(n);
    if (llama_tokenize(vocab, text.c_str(), text.size(), toks.data(), toks.size(), true, false) < 0) {
        fprintf(stderr, "tokenize failed\n");
        return 1;
    }
    if (n < 2 * n_ctx) { fprintf(stderr, "need %d tokens, have %d\n", 2 * n_ctx, n); return 1; }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_ubatch = std::min(n_ctx, 512);  // llama-perplexity's default n_ubatch
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }

    const int n_vocab = llama_vocab_n_tokens(vocab);
    const bool add_bos = llama_vocab_get_add_bos(vocab);
    const int n_chunk = n / n_ctx;
    const int first = n_ctx / 2;
    llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    std::vector<double> chunk_nll(n_chunk);
    double nll = 0, nll2 = 0;
    long count = 0;
    for (int c = 0; c < n_chunk; c++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = n_ctx;
        for (int k = 0; k < n_ctx; k++) {
            batch.token[k] = (k == 0 && add_bos) ? llama_vocab_bos(vocab) : toks[c * n_ctx + k];
            batch.pos[k] = k;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = k >= first;
        }
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed in chunk %d\n", c); return 1; }
        double s = 0;
        for (int j = first; j < n_ctx - 1; j++) {
            const float * lg = llama_get_logits_ith(ctx, j);
            const int tok = toks[c * n_ctx + j + 1];
            float mx = lg[0];
            for (int v = 1; v < n_vocab; v++) mx = std::max(mx, lg[v]);
            double se = 0;
            for (int v = 0; v < n_vocab; v++) se += expf(lg[v] - mx);
            const double x = -(lg[tok] - mx - log(se));
            s += x;
            nll2 += x * x;
        }
        chunk_nll[c] = s;
        nll += s;
        count += n_ctx - first - 1;
    }
    const double mean = nll / count;
    double var = nll2 / count - mean * mean;
    printf("{\n  \"file\": %s,\n  \"n_ctx\": %d,\n  \"n_tokens\": %d,\n  \"n_chunks\": %d,\n  \"scored_per_chunk\": %d,\n",
           json_str(path.substr(path.find_last_of('/') + 1)).c_str(), n_ctx, n, n_chunk, n_ctx - first - 1);
    printf("  \"mean_nll\": %.17g,\n  \"ppl\": %.17g,\n  \"ppl_stderr\": %.17g,\n", mean, exp(mean), var > 0 ? sqrt(var / (count - 1)) * exp(mean) : 0.0);
    printf("  \"chunk_nll_sums\": [");
    for (int c = 0; c < n_chunk; c++) printf("%s%.17g", c ? (c % 4 ? ", " : ",\n    ") : "\n    ", chunk_nll[c]);
    printf("\n  ]\n}\n");
    llama_batch_free(batch);
    llama_free(ctx);
    return 0;
}

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    std::string model_path, prompt;
    int n_predict = 48, n_threads = 1, n_ctx = 512, top_k = 5;
    bool all_logits = false;
    std::string ppl_file;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&](void) -> const char * {
            if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", a.c_str()); exit(2); }
            return argv[++i];
        };
        if (a == "-m") model_path = next();
        else if (a == "-n") n_predict = atoi(next());
        else if (a == "-t") n_threads = atoi(next());
        else if (a == "-c") n_ctx = atoi(next());
        else if (a == "-k") top_k = atoi(next());
        else if (a == "--all-logits") all_logits = true;
        else if (a == "--ppl") ppl_file = next();
        else prompt = a;
    }
    if (model_path.empty() || (prompt.empty() && ppl_file.empty())) {
        fprintf(stderr, "usage: %s -m model.gguf [-n N] [-t threads] [-c ctx] [-k topk] [--all-logits] PROMPT\n", argv[0]);
        return 2;
    }

    llama_log_set(quiet_log, nullptr);
    ggml_backend_load_all();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) { fprintf(stderr, "unable to load %s\n", model_path.c_str()); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    if (!ppl_file.empty()) {
        return run_ppl(model, vocab, ppl_file, n_ctx, n_threads);
    }

    // add_special=true (BOS when the vocab says so), parse_special=false: the
    // prompt is plain text, so "<s>" in it would stay text, not become BOS.
    int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), nullptr, 0, true, false);
    std::vector<llama_token> toks(n_prompt);
    if (llama_tokenize(vocab, prompt.c_str(), prompt.size(), toks.data(), toks.size(), true, false) < 0) {
        fprintf(stderr, "tokenize failed\n");
        return 1;
    }
    if (n_prompt + n_predict > n_ctx) { fprintf(stderr, "prompt + n exceeds context %d\n", n_ctx); return 1; }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_ubatch = n_ctx;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }

    std::vector<llama_token> gen;
    std::vector<float> win_logit, margin;
    std::vector<float> first_logits;
    llama_batch batch = llama_batch_get_one(toks.data(), toks.size());
    llama_token cur;
    bool hit_eog = false;
    for (int step = 0; step < n_predict; step++) {
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed at step %d\n", step); return 1; }
        const float * lg = llama_get_logits_ith(ctx, -1);
        if (step == 0) first_logits.assign(lg, lg + n_vocab);
        // argmax, lowest id on ties (what llama_sampler_init_greedy does).
        int best = 0;
        for (int j = 1; j < n_vocab; j++) if (lg[j] > lg[best]) best = j;
        float second = -INFINITY;
        for (int j = 0; j < n_vocab; j++) if (j != best && lg[j] > second) second = lg[j];
        cur = best;
        gen.push_back(cur);
        win_logit.push_back(lg[best]);
        margin.push_back(lg[best] - second);
        if (llama_vocab_is_eog(vocab, cur)) { hit_eog = true; break; }
        batch = llama_batch_get_one(&cur, 1);
    }

    std::string text;
    for (auto id : gen) {
        if (!llama_vocab_is_eog(vocab, id)) text += piece(vocab, id);
    }

    std::vector<int> order(n_vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return first_logits[a] > first_logits[b]; });

    printf("{\n  \"prompt\": %s,\n  \"n_threads\": %d,\n  \"n_ctx\": %d,\n  \"n_predict\": %d,\n", json_str(prompt).c_str(), n_threads, n_ctx, n_predict);
    printf("  \"prompt_ids\": [");
    for (size_t i = 0; i < toks.size(); i++) printf("%s%d", i ? ", " : "", toks[i]);
    printf("],\n  \"generated_ids\": [");
    for (size_t i = 0; i < gen.size(); i++) printf("%s%d", i ? ", " : "", gen[i]);
    printf("],\n  \"stopped_at_eog\": %s,\n", hit_eog ? "true" : "false");
    printf("  \"text\": %s,\n", json_str(text).c_str());
    printf("  \"winning_logits\": [");
    for (size_t i = 0; i < win_logit.size(); i++) printf("%s%.9g", i ? ", " : "", win_logit[i]);
    printf("],\n  \"margins\": [");
    for (size_t i = 0; i < margin.size(); i++) printf("%s%.9g", i ? ", " : "", margin[i]);
    printf("],\n  \"top_after_prompt\": [");
    for (int i = 0; i < top_k && i < n_vocab; i++) {
        int id = order[i];
        printf("%s\n    {\"id\": %d, \"piece\": %s, \"logit\": %.9g}", i ? "," : "", id, json_str(piece(vocab, id)).c_str(), first_logits[id]);
    }
    printf("\n  ]");
    if (all_logits) {
        printf(",\n  \"logits_after_prompt\": [");
        for (int j = 0; j < n_vocab; j++) printf("%s%.9g", j ? (j % 8 ? ", " : ",\n    ") : "\n    ", first_logits[j]);
        printf("\n  ]");
    }
    printf("\n}\n");

    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
