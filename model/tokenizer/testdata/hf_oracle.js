// Writes hf_fuzz.json: random strings and their token ids from Hugging Face
// tokenizers (the Rust library, through its official Node binding), used by
// TestHFOracle as an independent oracle beyond llama.cpp's vectors.
//
//   mkdir -p /tmp/tokoracle && (cd /tmp/tokoracle && npm i -E tokenizers@0.23.2)
//   NODE_PATH=/tmp/tokoracle/node_modules node hf_oracle.js ../../../../shared/testdata > hf_fuzz.json
//
// The strings come from a seeded generator, so reruns give the same file.
const { Tokenizer } = require('tokenizers');
const path = require('path');

const testdata = process.argv[2];
if (!testdata) {
  console.error('usage: node hf_oracle.js TESTDATA_DIR > hf_fuzz.json');
  process.exit(2);
}

// mulberry32: a small seeded PRNG.
let seed = 12345;
function rnd() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];

// Pieces chosen to hit the pre-tokenizer's classes: contractions in both
// cases, digits of several scripts, every Unicode space and line break,
// combining marks (NFC), emoji sequences, and the added tokens.
const pieces = [
  'a', 'b', 'e', 't', 'Z', 'Q', 'the', ' the', 'Hello', ' world', 'don', "'s", "'S", "'ll", "'LL", "'Re", "'d", "'", '"',
  ' ', ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\r', '\t', ' \n', '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680', '\u2000',
  '\u2003', '\u2009', '\u200a', '\u200b', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u180e',
  '0', '7', '12', '345', '6789', '\u0663', '\uff11', '\u00bd', '\u2167', '\u00b2',
  '.', ',', '!', '?', '...', '--', '(', ')', '{', '}', '$', '+', '<', '>', '=', '^', '~', '|', '_', '@', '#', '%',
  'é', 'e\u0301', 'a\u0308', '\u0301', 'ß', 'İ', 'ǅ', 'ﬁ', 'Ω', 'д', 'Жук', '中文', '日本語', 'ไทย', '한국어', 'ល', 'عربى', 'עברית',
  '🦙', '😀', '👍🏽', '👨‍👩‍👧', '🇫🇷', '❤️', '\u200d',
  '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>',
  '<|im_start', 'im_end|>', '<th', 'ink>',
];

function randomString() {
  let s = '';
  const n = Math.floor(rnd() * 24);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.1) {
      // any Unicode scalar value (no surrogates), mostly from the BMP
      let c = rnd() < 0.8 ? Math.floor(rnd() * 0x10000) : 0x10000 + Math.floor(rnd() * 0x100000);
      if (c >= 0xd800 && c <= 0xdfff) c = 0x41;
      s += String.fromCodePoint(c);
    } else if (r < 0.15) {
      s += pick(pieces).repeat(1 + Math.floor(rnd() * 6));
    } else {
      s += pick(pieces);
    }
  }
  return s;
}

(async () => {
  const names = ['qwen3', 'llama3'];
  const toks = names.map((n) => Tokenizer.fromFile(path.join(testdata, 'tokenizers', n, 'tokenizer.json')));
  const texts = [];
  for (let i = 0; i < 1200; i++) texts.push(randomString());
  const out = { generator: 'hf_oracle.js with tokenizers@0.23.2, addSpecialTokens=false', cases: [] };
  for (const text of texts) {
    const c = { text };
    for (let k = 0; k < names.length; k++) {
      const e = await toks[k].encode(text, null, { addSpecialTokens: false });
      c[names[k]] = Array.from(e.getIds());
    }
    out.cases.push(c);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
