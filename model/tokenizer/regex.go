package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dlclark/regexp2"

	"github.com/armor-llm/armor/model/limits"
)

// Pre-tokenizer regexes come from tokenizer.json, an untrusted file, and
// regexp2 is a backtracking engine: a pattern with nested quantifiers
// takes time exponential in the input length. Three guards:
//   - patterns whose quantified groups hold unbounded quantifiers, the
//     shape of catastrophic backtracking, are refused at load;
//   - every compiled pattern is probed at load on short adversarial inputs
//     and refused if a probe runs past probeTimeout;
//   - every match has limits.RegexTimeout, and a timeout is an error.

// probeTimeout bounds each load-time probe. Real pre-tokenizer patterns
// take microseconds on these inputs; a catastrophic one takes seconds.
const probeTimeout = 100 * time.Millisecond

// probeInputs are short runs of the characters that real patterns quantify
// (letters, digits, spaces, punctuation, newlines), each ending in a
// character that forces a failing match to backtrack.
var probeInputs = func() []string {
	var in []string
	for _, unit := range []string{"a", "1", " ", "!", "\n", "a ", "a1", " a", "'s"} {
		r := strings.Repeat(unit, 64/len(unit))
		in = append(in, r, r+"\x00", r+"!", r+"a")
	}
	return in
}()

// compilePreTokenizer compiles a pre-tokenizer pattern with the match
// timeout, after the static check and before the probe.
func compilePreTokenizer(pattern string) (*regexp2.Regexp, error) {
	if err := nestedQuantifier(pattern); err != nil {
		return nil, err
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = probeTimeout
	for _, in := range probeInputs {
		if _, err := regexSplit(re, in, nil); err != nil {
			return nil, fmt.Errorf("refused: matching %d characters took over %v (catastrophic backtracking)", len(in), probeTimeout)
		}
	}
	re.MatchTimeout = limits.RegexTimeout
	return re, nil
}

// nestedQuantifier reports a group that contains an unbounded quantifier
// (*, +, {n,}) and is itself repeated by one, e.g. (a+)+ or (?:\s*\w)*:
// star height 2, the classic exponential-backtracking form. No real
// pre-tokenizer pattern (GPT-2, Llama 3, Qwen2, DeepSeek...) has one.
func nestedQuantifier(p string) error {
	type group struct {
		start     int
		unbounded bool // an unbounded quantifier inside
	}
	var stack []group
	lastGroup := -1        // start of the group that just closed, -1 if the last atom was no group
	lastUnbounded := false // whether that group held an unbounded quantifier
	for i := 0; i < len(p); i++ {
		c := p[i]
		atomGroup := -1
		switch c {
		case '\\':
			i++ // escaped character: one atom
		case '[':
			// Character class: skip to its closing bracket.
			j := i + 1
			if j < len(p) && p[j] == '^' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '(':
			stack = append(stack, group{start: i})
		case ')':
			if len(stack) == 0 {
				return errors.New("unbalanced parenthesis")
			}
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			atomGroup = g.start
			lastUnbounded = g.unbounded
			if len(stack) > 0 && g.unbounded {
				stack[len(stack)-1].unbounded = true
			}
		case '*', '+', '{':
			unbounded := c != '{'
			if c == '{' {
				j := strings.IndexByte(p[i:], '}')
				if j < 0 {
					break
				}
				body := p[i+1 : i+j]
				unbounded = strings.HasSuffix(body, ",")
				i += j
			}
			if unbounded {
				if lastGroup >= 0 && lastUnbounded {
					return fmt.Errorf("refused: the group at offset %d holds an unbounded quantifier and is repeated by another (nested quantifiers backtrack exponentially)", lastGroup)
				}
				if len(stack) > 0 {
					stack[len(stack)-1].unbounded = true
				}
			}
			if i+1 < len(p) && (p[i+1] == '?' || p[i+1] == '+') {
				i++ // lazy or possessive form of the same quantifier
			}
			continue // a quantifier applies to lastGroup; keep it for a following one
		case '?':
			continue
		}
		lastGroup = atomGroup
	}
	return nil
}
