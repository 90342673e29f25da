package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// The curves PNG is drawn with the standard library alone: two panels
// (loss; accuracy) against the optimizer step, axes with a few labelled
// ticks, one polyline per series and a legend, in a 3×5 bitmap font.

var (
	colBG    = color.RGBA{255, 255, 255, 255}
	colAxis  = color.RGBA{40, 40, 40, 255}
	colGrid  = color.RGBA{225, 225, 225, 255}
	colTrain = color.RGBA{31, 119, 180, 255}  // blue
	colTest  = color.RGBA{214, 39, 40, 255}   // red
	colTop5  = color.RGBA{44, 160, 44, 255}   // green
	colTrAcc = color.RGBA{150, 150, 220, 255} // light blue
)

// series is one curve of a panel.
type series struct {
	name  string
	col   color.RGBA
	x, y  []float64
	marks bool // draw a dot at every point (sparse series such as per-epoch tests)
}

// renderCurves draws the rows of metrics.csv as a PNG.
func renderCurves(rows []Metric) ([]byte, error) {
	const W, H = 1000, 420
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fillRect(img, img.Bounds(), colBG)

	pick := func(name string, col color.RGBA, marks bool, f func(Metric) float64, scale float64) series {
		s := series{name: name, col: col, marks: marks}
		for _, r := range rows {
			if v := f(r); !math.IsNaN(v) && !math.IsInf(v, 0) {
				s.x = append(s.x, float64(r.Step))
				s.y = append(s.y, v*scale)
			}
		}
		return s
	}
	loss := []series{
		// Evaluation rows carry the epoch's mean training loss; the curve
		// uses the windowed rows only.
		pick("TRAIN LOSS", colTrain, false, func(m Metric) float64 {
			if !math.IsNaN(m.TestLoss) {
				return math.NaN()
			}
			return m.TrainLoss
		}, 1),
		pick("TEST LOSS", colTest, true, func(m Metric) float64 { return m.TestLoss }, 1),
	}
	acc := []series{
		pick("TRAIN TOP-1", colTrAcc, false, func(m Metric) float64 { return m.TrainTop1 }, 100),
		pick("TEST TOP-1", colTest, true, func(m Metric) float64 { return m.TestTop1 }, 100),
		pick("TEST TOP-5", colTop5, true, func(m Metric) float64 { return m.TestTop5 }, 100),
	}
	drawPanel(img, image.Rect(0, 0, W/2, H), "LOSS", loss, false)
	drawPanel(img, image.Rect(W/2, 0, W, H), "ACCURACY %", acc, true)

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode curves png: %w", err)
	}
	return buf.Bytes(), nil
}

// drawPanel draws one set of axes with its series inside r. For accuracy
// the y axis ends at 100 and starts at a round value below the lowest point.
func drawPanel(img *image.RGBA, r image.Rectangle, title string, ss []series, accuracy bool) {
	plot := image.Rect(r.Min.X+70, r.Min.Y+40, r.Max.X-20, r.Max.Y-50)
	x0, x1 := 0.0, 1.0
	y0, y1 := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for i := range s.x {
			x1 = math.Max(x1, s.x[i])
			y0 = math.Min(y0, s.y[i])
			y1 = math.Max(y1, s.y[i])
		}
	}
	if math.IsInf(y0, 1) { // no data yet
		y0, y1 = 0, 1
	}
	x1 = 5 * niceCeil(x1/5)
	if accuracy {
		// Start at the highest of these at or below the lowest point, so
		// that the five tick steps are round numbers.
		lo := y0
		y1 = 100
		y0 = 0
		for _, b := range []float64{50, 75, 90, 95, 98, 99} {
			if b <= lo {
				y0 = b
			}
		}
	} else {
		y0 = 0
		y1 = niceCeil(y1)
	}

	// Grid, ticks and labels.
	for i := 0; i <= 5; i++ {
		fy := y0 + (y1-y0)*float64(i)/5
		py := plot.Max.Y - int(math.Round(float64(plot.Dy())*float64(i)/5))
		hline(img, plot.Min.X, plot.Max.X, py, colGrid)
		lbl := fmtTick(fy)
		drawText(img, plot.Min.X-8-textWidth(lbl), py-5, lbl, colAxis)

		fx := x0 + (x1-x0)*float64(i)/5
		px := plot.Min.X + int(math.Round(float64(plot.Dx())*float64(i)/5))
		vline(img, px, plot.Min.Y, plot.Max.Y, colGrid)
		lbl = fmtTick(fx)
		drawText(img, px-textWidth(lbl)/2, plot.Max.Y+8, lbl, colAxis)
	}
	hline(img, plot.Min.X, plot.Max.X, plot.Max.Y, colAxis)
	vline(img, plot.Min.X, plot.Min.Y, plot.Max.Y, colAxis)
	drawText(img, plot.Min.X, r.Min.Y+14, title, colAxis)
	drawText(img, plot.Min.X+plot.Dx()/2-textWidth("STEP")/2, plot.Max.Y+26, "STEP", colAxis)

	toPx := func(x, y float64) (int, int) {
		px := plot.Min.X + int(math.Round((x-x0)/(x1-x0)*float64(plot.Dx())))
		py := plot.Max.Y - int(math.Round((y-y0)/(y1-y0)*float64(plot.Dy())))
		return px, clampInt(py, plot.Min.Y, plot.Max.Y)
	}
	lx := plot.Max.X - 130
	// The legend sits in the right-hand corner the curves' last points
	// keep clear of: at the bottom when they end in the upper half (a loss
	// falling to the bottom keeps it at the top).
	legendLow := false
	for _, s := range ss {
		if n := len(s.y); n > 0 && s.y[n-1] > (y0+y1)/2 {
			legendLow = true
		}
	}
	for k, s := range ss {
		for i := range s.x {
			px, py := toPx(s.x[i], s.y[i])
			if i > 0 {
				qx, qy := toPx(s.x[i-1], s.y[i-1])
				line(img, qx, qy, px, py, s.col)
				line(img, qx, qy+1, px, py+1, s.col)
			}
			if s.marks || len(s.x) == 1 { // a lone point of a line is a mark
				fillRect(img, image.Rect(px-2, py-2, px+3, py+3), s.col)
			}
		}
		ly := plot.Min.Y + 8 + 16*k
		if legendLow {
			ly = plot.Max.Y - 8 - 16*(len(ss)-k)
		}
		fillRect(img, image.Rect(lx, ly, lx+14, ly+10), s.col)
		drawText(img, lx+20, ly, s.name, colAxis)
	}
}

// niceCeil rounds v up to a round number: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6
// or 8 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// fmtTick formats an axis value in at most a few characters.
func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "K"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func clampInt(v, lo, hi int) int { return max(lo, min(v, hi)) }

func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	fillRect(img, image.Rect(x0, y, x1+1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	fillRect(img, image.Rect(x, y0, x+1, y1+1), c)
}

// line draws from (x0, y0) to (x1, y1) with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else if e2 <= dx {
			e += dx
			y0 += sy
		} else {
			e += dy + dx
			x0 += sx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// glyphs is a 3×5 bitmap font for the characters the plot writes; each
// glyph is five rows of three pixels, '#' set.
var glyphs = map[rune]string{
	'0': "###" + "#.#" + "#.#" + "#.#" + "###",
	'1': ".#." + "##." + ".#." + ".#." + "###",
	'2': "###" + "..#" + "###" + "#.." + "###",
	'3': "###" + "..#" + "###" + "..#" + "###",
	'4': "#.#" + "#.#" + "###" + "..#" + "..#",
	'5': "###" + "#.." + "###" + "..#" + "###",
	'6': "###" + "#.." + "###" + "#.#" + "###",
	'7': "###" + "..#" + "..#" + "..#" + "..#",
	'8': "###" + "#.#" + "###" + "#.#" + "###",
	'9': "###" + "#.#" + "###" + "..#" + "###",
	'.': "..." + "..." + "..." + "..." + ".#.",
	'-': "..." + "..." + "###" + "..." + "...",
	'+': "..." + ".#." + "###" + ".#." + "...",
	'%': "#.#" + "..#" + ".#." + "#.." + "#.#",
	'A': ".#." + "#.#" + "###" + "#.#" + "#.#",
	'C': "###" + "#.." + "#.." + "#.." + "###",
	'E': "###" + "#.." + "##." + "#.." + "###",
	'I': "###" + ".#." + ".#." + ".#." + "###",
	'K': "#.#" + "#.#" + "##." + "#.#" + "#.#",
	'L': "#.." + "#.." + "#.." + "#.." + "###",
	'M': "#.#" + "###" + "###" + "#.#" + "#.#",
	'N': "##." + "#.#" + "#.#" + "#.#" + "#.#",
	'O': ".#." + "#.#" + "#.#" + "#.#" + ".#.",
	'P': "##." + "#.#" + "##." + "#.." + "#..",
	'R': "##." + "#.#" + "##." + "#.#" + "#.#",
	'S': ".##" + "#.." + ".#." + "..#" + "##.",
	'T': "###" + ".#." + ".#." + ".#." + ".#.",
	'U': "#.#" + "#.#" + "#.#" + "#.#" + "###",
	'Y': "#.#" + "#.#" + ".#." + ".#." + ".#.",
	'e': "..." + "###" + "###" + "#.." + "###", // exponent in 1e-05
}

const glyphScale = 2

func textWidth(s string) int { return len(s) * 4 * glyphScale }

// drawText writes s with its top-left corner at (x, y); characters without
// a glyph are left blank.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, ch := range s {
		g := glyphs[ch]
		if g == "" {
			g = glyphs[rune(strings.ToUpper(string(ch))[0])]
		}
		for i := 0; i < len(g); i++ {
			if g[i] == '#' {
				px, py := x+(i%3)*glyphScale, y+(i/3)*glyphScale
				fillRect(img, image.Rect(px, py, px+glyphScale, py+glyphScale), c)
			}
		}
		x += 4 * glyphScale
	}
}
