package bench

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
)

// WriteSpeedPlot writes an SVG bar chart with three panels (prefill tok/s,
// decode tok/s, weight GiB), one bar per variant.
func WriteSpeedPlot(path string, rs []SpeedResult) error {
	var ok []SpeedResult
	for _, r := range rs {
		if r.Error == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return fmt.Errorf("no results to plot")
	}
	panels := []struct {
		title string
		val   func(SpeedResult) float64
		unit  string
	}{
		{"prefill tokens/s", func(r SpeedResult) float64 { return r.PrefillTPS }, "%.1f"},
		{"decode tokens/s", func(r SpeedResult) float64 { return r.DecodeTPS }, "%.2f"},
		{"weights (GiB)", func(r SpeedResult) float64 { return float64(r.WeightBytes) / (1 << 30) }, "%.2f"},
	}
	colors := map[string]string{"dense": "#888888", "sparse24": "#3a7bd5", "armor": "#e8590c", "llama.cpp": "#2b8a3e"}
	const pw, ph, top, barGap = 300, 260, 40, 8
	w := len(panels)*pw + 20
	h := ph + top + 70
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	label := func(r SpeedResult) string {
		s := r.Variant
		if r.Shape != "" {
			s = r.Shape + " " + s
		}
		return s + " " + r.DType
	}
	for p, pn := range panels {
		x0 := 10 + p*pw
		mx := 0.0
		for _, r := range ok {
			mx = max(mx, pn.val(r))
		}
		if mx == 0 {
			mx = 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(pn.title))
		bw := (pw - 20 - barGap*len(ok)) / len(ok)
		for i, r := range ok {
			v := pn.val(r)
			bh := int(float64(ph-20) * v / mx)
			x := x0 + i*(bw+barGap)
			y := top + ph - 20 - bh
			c := colors[r.Variant]
			if c == "" {
				c = "#555555"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, y, bw, bh, c)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+bw/2, y-4, fmt.Sprintf(pn.unit, v))
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" transform="rotate(-30 %d %d)">%s</text>`+"\n",
				x+bw/2, top+ph-4, x+bw/2, top+ph-4, html.EscapeString(label(r)))
		}
	}
	if len(ok) > 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#444">%s, %s, %d threads</text>`+"\n", h-8, html.EscapeString(ok[0].CPU), html.EscapeString(ok[0].GoVersion), ok[0].Threads)
	}
	b.WriteString("</svg>\n")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.svg")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), path)
}
