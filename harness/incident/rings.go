package incident

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Ring is one stage of a rollout: a share of the targeted tenants, and the guard that runs after
// it.
type Ring struct {
	Name string
	// Fraction is the ring's share of the targeted tenants; the last ring takes what is left.
	Fraction float64
	// MaxRows halts the rollout when the ring harmed more rows than this; 0: no guard.
	MaxRows int64
}

// RingResult is what one ring of a rollout did.
type RingResult struct {
	Name    string  `json:"name"`
	Tenants []int64 `json:"tenants"`
	Rows    int64   `json:"rows"`
	// Halted says the ring's guard stopped the rollout after it.
	Halted bool `json:"halted"`
	// Skipped says the ring never ran because an earlier guard halted the rollout.
	Skipped bool `json:"skipped"`
}

// Rollout runs a destructive admin script the way careful teams do: in rings (canary tenants, a
// small ring, the rest), with a guard after each ring that halts the script when the damage is
// abnormal. harm is the script, run on one ring's tenants (e.g. DeleteTenants). The record holds
// only what the rings that ran harmed; the results say where the damage was contained.
func Rollout(ctx context.Context, c cluster.Cluster, kind string, targets []Tenant, rings []Ring,
	harm func(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant) (Record, error)) (Record, []RingResult, error) {
	var rec Record
	results := make([]RingResult, len(rings))
	halted := false
	for i, part := range splitRings(targets, rings) {
		results[i].Name = rings[i].Name
		for _, t := range part {
			results[i].Tenants = append(results[i].Tenants, t.ID)
		}
		if halted || len(part) == 0 {
			results[i].Skipped = halted
			continue
		}
		r, err := harm(ctx, c, kind, part)
		if err != nil {
			return rec, results, fmt.Errorf("roll out ring %s: %w", rings[i].Name, err)
		}
		for _, h := range r.Harms {
			results[i].Rows += h.Rows
		}
		rec = merge(rec, r)
		if g := rings[i].MaxRows; g > 0 && results[i].Rows > g {
			results[i].Halted, halted = true, true
		}
	}
	return rec, results, nil
}

// splitRings divides the targets between the rings by their fractions, in order.
func splitRings(targets []Tenant, rings []Ring) [][]Tenant {
	out := make([][]Tenant, len(rings))
	start := 0
	for i, r := range rings {
		n := len(targets) - start
		if i < len(rings)-1 {
			n = min(n, max(1, int(math.Round(r.Fraction*float64(len(targets))))))
		}
		out[i] = targets[start : start+n]
		start += n
	}
	return out
}

// merge adds the tenants and harms of b to a, keeping a record's orders.
func merge(a, b Record) Record {
	if a.Kind == "" {
		return b
	}
	a.Affected = append(a.Affected, b.Affected...)
	slices.SortFunc(a.Affected, func(x, y Tenant) int { return cmp.Compare(x.ID, y.ID) })
	a.Harms = append(a.Harms, b.Harms...)
	slices.SortStableFunc(a.Harms, func(x, y Harm) int { return cmp.Or(cmp.Compare(x.Shard, y.Shard), x.Time.Compare(y.Time)) })
	return a
}
