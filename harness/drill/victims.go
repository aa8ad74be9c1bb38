package drill

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// victimStream separates the victims' random stream from every other use of the seed.
const victimStream = 0x7669637469 // "victi"

// chooseVictims picks round(fraction × tenants) tenants (at least one) with the drill's seed: the
// same seed harms the same tenants, whatever else changes.
func chooseVictims(plan *fixtures.Plan, fraction float64, seed uint64) []fixtures.Tenant {
	n := max(1, int(math.Round(fraction*float64(len(plan.Tenants)))))
	rng := rand.New(rand.NewPCG(seed, victimStream))
	picked := slices.Clone(plan.Tenants)
	rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	picked = picked[:min(n, len(picked))]
	slices.SortFunc(picked, func(a, b fixtures.Tenant) int { return cmp.Compare(a.ID, b.ID) })
	return picked
}

// incidentTenants converts plan tenants into the incident's.
func incidentTenants(ts []fixtures.Tenant) []incident.Tenant {
	out := make([]incident.Tenant, len(ts))
	for i, t := range ts {
		out[i] = incident.Tenant{ID: t.ID, Shard: t.Shard}
	}
	return out
}
