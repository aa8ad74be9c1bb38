// Package costmodel fits how long each restore phase takes as a function of the work it does,
// from drills measured at several sizes on one machine, and projects from the fit how long the
// restore of a larger incident would take: the question leadership asks of a drill of 200 small
// tenants ("would we meet our objective at our size?"), answered from measurements rather than
// a guess, with the fit's error carried into the answer as a range.
package costmodel

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Feature names a unit of work a phase's time grows with.
type Feature string

// The units of work the phases are fitted on.
const (
	// Fixed is the phase's cost whatever its size: one unit per phase.
	Fixed Feature = "fixed"
	// DataGB is GB of shard data, which a base backup restores.
	DataGB Feature = "data_gb"
	// WALGB is GB of WAL replayed.
	WALGB Feature = "wal_gb"
	// Tenants counts tenants merged.
	Tenants Feature = "tenants"
	// Rows counts rows merged, in millions.
	Rows Feature = "mrows"
)

// Unit says what one unit of f is, for tables: "s", "s/GB", ...
func (f Feature) Unit() string {
	switch f {
	case Fixed:
		return "s"
	case DataGB, WALGB:
		return "s/GB"
	case Tenants:
		return "s/tenant"
	case Rows:
		return "s/M rows"
	}
	return "s/" + string(f)
}

// Point is one measured phase of one shard: the work it did and how long it took.
type Point struct {
	// Work is the phase's amount of each feature; Fixed is implied.
	Work map[Feature]float64 `json:"work"`
	// Seconds is how long the phase took.
	Seconds float64 `json:"seconds"`
	// Label says where the point was measured ("rows=1000000 victims=30 shard 0").
	Label string `json:"label,omitempty"`
}

// value is f's amount in the point's work.
func (p Point) value(f Feature) float64 {
	if f == Fixed {
		return 1
	}
	return p.Work[f]
}

// Curve is one phase's fitted cost: seconds = Σ coefficient × amount of its feature, every
// coefficient at least zero (no work makes a phase faster), with the measured points and the
// fit's error.
type Curve struct {
	Phase    string    `json:"phase"`
	Features []Feature `json:"features"`
	// Coefficients are seconds per unit of each feature, in Features order.
	Coefficients []float64 `json:"coefficients"`
	Points       []Point   `json:"points"`
	// RMSE is the residuals' root mean square, in seconds; StdErr the residual standard error
	// (RMSE corrected for the coefficients fitted), which sizes a projection's range.
	RMSE   float64 `json:"rmse_s"`
	StdErr float64 `json:"stderr_s"`
	// R2 is the share of the points' variance the fit explains (1 when they all lie on it).
	R2 float64 `json:"r2"`
	// inverse is (XᵀX)⁻¹ over the features kept (coefficient > 0 or the only one), for the
	// prediction interval; kept lists their indexes.
	inverse [][]float64
	kept    []int
}

// ErrTooFewPoints is returned when a phase has fewer points than features to fit.
var ErrTooFewPoints = errors.New("too few measured points")

// Fit fits phase's curve on features to the points by least squares with every coefficient at
// least zero: a feature whose unconstrained coefficient comes out negative (noise on a machine
// where it costs little) is dropped and the rest fitted again, until none is.
func Fit(phase string, features []Feature, points []Point) (Curve, error) {
	c := Curve{Phase: phase, Features: slices.Clone(features), Points: slices.Clone(points), Coefficients: make([]float64, len(features))}
	if len(points) < len(features) {
		return c, fmt.Errorf("fit %s: %w: %d for %d features", phase, ErrTooFewPoints, len(points), len(features))
	}
	kept := make([]int, len(features))
	for i := range kept {
		kept[i] = i
	}
	for {
		coef, inv, err := leastSquares(points, features, kept)
		if err != nil {
			return c, fmt.Errorf("fit %s: %w", phase, err)
		}
		worst := -1
		for i, v := range coef {
			if v < 0 && (worst < 0 || v < coef[worst]) {
				worst = i
			}
		}
		if worst < 0 || len(kept) == 1 {
			for i, k := range kept {
				c.Coefficients[k] = max(coef[i], 0)
			}
			c.inverse, c.kept = inv, kept
			break
		}
		kept = slices.Delete(kept, worst, worst+1)
	}
	var ss, mean, tot float64
	for _, p := range points {
		mean += p.Seconds / float64(len(points))
	}
	for _, p := range points {
		r := p.Seconds - c.estimate(p)
		ss += r * r
		tot += (p.Seconds - mean) * (p.Seconds - mean)
	}
	c.RMSE = math.Sqrt(ss / float64(len(points)))
	if dof := len(points) - len(c.kept); dof > 0 {
		c.StdErr = math.Sqrt(ss / float64(dof))
	}
	c.R2 = 1
	if tot > 0 {
		c.R2 = 1 - ss/tot
	}
	return c, nil
}

// estimate is the curve's seconds for the point's work.
func (c Curve) estimate(p Point) float64 {
	var s float64
	for i, f := range c.Features {
		s += c.Coefficients[i] * p.value(f)
	}
	return s
}

// Predict returns the curve's seconds for work and the half-width of its 95% prediction
// interval: the fit's residual error widened by how far work lies from the points measured. A
// fit with no spare point (as many points as features) has no error estimate, and its interval
// is unknown: +Inf.
func (c Curve) Predict(work map[Feature]float64) (seconds, halfWidth float64) {
	p := Point{Work: work}
	seconds = c.estimate(p)
	dof := len(c.Points) - len(c.kept)
	if dof <= 0 || c.inverse == nil {
		return seconds, math.Inf(1)
	}
	x := make([]float64, len(c.kept))
	for i, k := range c.kept {
		x[i] = p.value(c.Features[k])
	}
	var lever float64
	for i := range x {
		for j := range x {
			lever += x[i] * c.inverse[i][j] * x[j]
		}
	}
	return seconds, tQuantile975(dof) * c.StdErr * math.Sqrt(1+lever)
}

// leastSquares solves the normal equations of the points over the kept features, returning the
// coefficients and (XᵀX)⁻¹.
func leastSquares(points []Point, features []Feature, kept []int) ([]float64, [][]float64, error) {
	n := len(kept)
	xtx := make([][]float64, n)
	xty := make([]float64, n)
	for i := range xtx {
		xtx[i] = make([]float64, n)
	}
	for _, p := range points {
		for i, a := range kept {
			xa := p.value(features[a])
			xty[i] += xa * p.Seconds
			for j, b := range kept {
				xtx[i][j] += xa * p.value(features[b])
			}
		}
	}
	inv, err := invert(xtx)
	if err != nil {
		return nil, nil, err
	}
	coef := make([]float64, n)
	for i := range coef {
		for j := range coef {
			coef[i] += inv[i][j] * xty[j]
		}
	}
	return coef, inv, nil
}

// invert inverts a small square matrix by Gauss-Jordan elimination with partial pivoting. A
// singular one means the points do not tell the features apart (every point the same size, or
// two features always in the same proportion): the sweep must vary them independently.
func invert(a [][]float64) ([][]float64, error) {
	n := len(a)
	m := make([][]float64, n)
	for i := range a {
		m[i] = make([]float64, 2*n)
		copy(m[i], a[i])
		m[i][n+i] = 1
	}
	for col := range n {
		pivot := col
		for r := col + 1; r < n; r++ {
			if math.Abs(m[r][col]) > math.Abs(m[pivot][col]) {
				pivot = r
			}
		}
		if math.Abs(m[pivot][col]) < 1e-12*(1+math.Abs(a[col][col])) {
			return nil, errors.New("the points do not tell the features apart: vary each feature's size independently")
		}
		m[col], m[pivot] = m[pivot], m[col]
		d := m[col][col]
		for j := range m[col] {
			m[col][j] /= d
		}
		for r := range n {
			if r == col || m[r][col] == 0 {
				continue
			}
			f := m[r][col]
			for j := range m[r] {
				m[r][j] -= f * m[col][j]
			}
		}
	}
	out := make([][]float64, n)
	for i := range m {
		out[i] = m[i][n:]
	}
	return out, nil
}

// tQuantile975 is Student's t distribution's 97.5th percentile with dof degrees of freedom: the
// multiplier of a two-sided 95% interval.
func tQuantile975(dof int) float64 {
	table := []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086}
	switch {
	case dof <= 0:
		return math.Inf(1)
	case dof <= len(table):
		return table[dof-1]
	case dof <= 30:
		return 2.042
	case dof <= 60:
		return 2.000
	}
	return 1.960
}
