package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// chart is a line chart drawn as inline SVG: axes, a few gridlines with labels, one polyline
// per run of samples without gaps, and an optional threshold line.
type chart struct {
	Title     string
	Unit      string
	Class     string // series colour class: cpu, mem, lat, err, score
	Points    []point
	From, To  time.Time
	Min, Max  float64 // Max 0: from the data
	Threshold float64 // NaN: none
	ThreshLbl string
	W, H      int
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// svg renders the chart.
func (c chart) svg() template.HTML {
	if c.W == 0 {
		c.W, c.H = 640, 180
	}
	const left, right, top, bottom = 48, 12, 22, 24
	pw, ph := float64(c.W-left-right), float64(c.H-top-bottom)
	maxV := c.Max
	last := math.NaN()
	n := 0
	for _, p := range c.Points {
		if !math.IsNaN(p.V) {
			n++
			last = p.V
			if c.Max == 0 && p.V > maxV {
				maxV = p.V
			}
		}
	}
	if c.Max == 0 {
		if !math.IsNaN(c.Threshold) {
			maxV = math.Max(maxV, c.Threshold)
		}
		maxV = niceMax(maxV * 1.1)
	}
	span := maxV - c.Min
	if span <= 0 {
		span = 1
	}
	from, to := c.From.UnixMilli(), c.To.UnixMilli()
	if to <= from {
		to = from + 1
	}
	x := func(t int64) float64 { return float64(left) + pw*float64(t-from)/float64(to-from) }
	y := func(v float64) float64 { return float64(top) + ph*(1-(math.Min(math.Max(v, c.Min), maxV)-c.Min)/span) }

	var b strings.Builder
	b.Grow(256 + 16*len(c.Points))
	title := html.EscapeString(c.Title)
	fmt.Fprintf(&b, `<svg class="chart %s" viewBox="0 0 %d %d" preserveAspectRatio="none" role="img" aria-label="%s">`, html.EscapeString(c.Class), c.W, c.H, title)
	cur := "no data"
	if !math.IsNaN(last) {
		cur = fmtNum(last) + " " + c.Unit
	}
	fmt.Fprintf(&b, `<text class="ctitle" x="%d" y="14">%s</text><text class="cnow" x="%d" y="14" text-anchor="end">%s</text>`,
		left, title, c.W-right, html.EscapeString(cur))
	for i := 0; i <= 4; i++ { // horizontal gridlines with labels
		v := c.Min + span*float64(i)/4
		yy := y(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/><text class="ylbl" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, yy, c.W-right, yy, left-4, yy+3, fmtNum(v))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/><line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`,
		left, top, left, c.H-bottom, left, c.H-bottom, c.W-right, c.H-bottom)
	for i := 0; i <= 3; i++ { // time labels
		t := from + (to-from)*int64(i)/3
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 3:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="xlbl" x="%.1f" y="%d" text-anchor="%s">%s</text>`, x(t), c.H-6, anchor,
			time.UnixMilli(t).UTC().Format("15:04:05"))
	}
	if !math.IsNaN(c.Threshold) {
		yy := y(c.Threshold)
		fmt.Fprintf(&b, `<line class="threshold" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/><text class="tlbl" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, yy, c.W-right, yy, c.W-right-2, yy-3, html.EscapeString(c.ThreshLbl))
	}
	// one polyline per run without gaps; a lone sample is a dot
	run := make([]point, 0, len(c.Points))
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			fmt.Fprintf(&b, `<circle class="series" cx="%.1f" cy="%.1f" r="2"/>`, x(run[0].T), y(run[0].V))
		default:
			b.WriteString(`<polyline class="series" points="`)
			for i, p := range run {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(strconv.FormatFloat(x(p.T), 'f', 1, 64))
				b.WriteByte(',')
				b.WriteString(strconv.FormatFloat(y(p.V), 'f', 1, 64))
			}
			b.WriteString(`"/>`)
		}
		run = run[:0]
	}
	for _, p := range c.Points {
		if math.IsNaN(p.V) {
			flush()
			continue
		}
		run = append(run, p)
	}
	flush()
	if n == 0 {
		fmt.Fprintf(&b, `<text class="nodata" x="%.1f" y="%.1f" text-anchor="middle">no data yet</text>`, float64(left)+pw/2, float64(top)+ph/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

// sparkline is a small chart without axes for the overview.
func sparkline(pts []point, from, to time.Time) template.HTML {
	const w, h = 120, 28
	maxV := 0.0
	for _, p := range pts {
		if !math.IsNaN(p.V) && p.V > maxV {
			maxV = p.V
		}
	}
	maxV = niceMax(maxV)
	f, t := from.UnixMilli(), to.UnixMilli()
	if t <= f {
		t = f + 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" preserveAspectRatio="none" aria-hidden="true"><polyline points="`, w, h)
	first := true
	for _, p := range pts {
		if math.IsNaN(p.V) {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		fmt.Fprintf(&b, "%.1f,%.1f", float64(w)*float64(p.T-f)/float64(t-f), 1+float64(h-2)*(1-p.V/maxV))
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers only
}
