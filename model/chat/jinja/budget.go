package jinja

// This file is armor's addition to the fork: a budget that bounds one
// render in steps, wall time, nesting depth and the size of what it builds
// (model/limits holds the numbers). Chat templates come from model files,
// which are untrusted; the upstream engine has no such bounds.

import (
	"fmt"
	"strings"
	"time"

	"github.com/armor-llm/armor/model/limits"
)

type budget struct {
	steps    int64
	depth    int
	out      int64
	deadline time.Time
}

func newBudget() *budget {
	return &budget{deadline: time.Now().Add(limits.TemplateTime)}
}

// step counts one evaluated node or expression; the clock is read every
// 1024 steps.
func (b *budget) step() error {
	b.steps++
	if b.steps > limits.TemplateSteps {
		return fmt.Errorf("rendering took more than %d steps", limits.TemplateSteps)
	}
	if b.steps&1023 == 0 && time.Now().After(b.deadline) {
		return fmt.Errorf("rendering took more than %v", limits.TemplateTime)
	}
	return nil
}

// charge counts n steps at once.
func (b *budget) charge(n int) error {
	b.steps += int64(n) - 1
	return b.step()
}

// enter and leave bound the nesting of evaluation (recursive macros).
func (b *budget) enter() error {
	b.depth++
	if b.depth > limits.TemplateDepth {
		return fmt.Errorf("rendering nested more than %d levels deep (recursive macro?)", limits.TemplateDepth)
	}
	return nil
}

func (b *budget) leave() { b.depth-- }

// grow accounts for n more bytes of output, over all the evaluators of
// the render (macro and block bodies render into their own buffers).
func (b *budget) grow(n int) error {
	b.out += int64(n)
	if b.out > limits.TemplateOutputBytes {
		return fmt.Errorf("rendering produced more than %d bytes", limits.TemplateOutputBytes)
	}
	return nil
}

// checkSize bounds a value an expression produced.
func checkSize(v Value) error {
	switch {
	case v.IsString() && len(v.AsString()) > limits.TemplateOutputBytes:
		return fmt.Errorf("a string of %d bytes exceeds the limit of %d", len(v.AsString()), limits.TemplateOutputBytes)
	case v.IsList() && v.AsList().Len() > limits.TemplateRange:
		return fmt.Errorf("a list of %d items exceeds the limit of %d", v.AsList().Len(), limits.TemplateRange)
	}
	return nil
}

// checkRepeat bounds s * n before the string is built.
func checkRepeat(size int, n int64) error {
	if n > 0 && size > 0 && int64(size) > limits.TemplateOutputBytes/n {
		return fmt.Errorf("repeating a string of %d bytes %d times exceeds the limit of %d bytes", size, n, limits.TemplateOutputBytes)
	}
	return nil
}

// checkReplace bounds the result of strings.Replace(s, old, new, count)
// before it is built.
func checkReplace(s, old, new string, count int) error {
	if len(new) <= len(old) {
		return nil
	}
	k := 0
	if old == "" {
		k = len(s) + 1 // Replace inserts new around every character
	} else {
		k = strings.Count(s, old)
	}
	if count >= 0 && count < k {
		k = count
	}
	if int64(len(s))+int64(k)*int64(len(new)-len(old)) > limits.TemplateOutputBytes {
		return fmt.Errorf("replace would build a string of more than %d bytes", limits.TemplateOutputBytes)
	}
	return nil
}
