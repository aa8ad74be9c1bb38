package drill

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/scenarios"
)

// victimStream separates the victims' random stream from every other use of the seed.
const victimStream = 0x7669637469 // "victi"

// chooseVictims picks the tenants the scenario's incident will harm, before it happens (their
// baseline is taken before the workload): every tenant of the lost shard (shard-loss), every
// tenant (bad-migration: the DDL runs on every shard), or tenants drawn with the drill's seed —
// the incident's tenant count (update-without-where), or round(fraction × tenants), at least one.
// The same seed harms the same tenants, whatever else changes.
func chooseVictims(plan *fixtures.Plan, in scenarios.Incident, seed uint64) []fixtures.Tenant {
	switch in.Kind {
	case scenarios.ShardLoss:
		return plan.OnShard(in.Shard)
	case scenarios.BadMigration:
		return slices.Clone(plan.Tenants)
	case scenarios.UpdateWithoutWhere:
		return drawTenants(plan, in.Tenants, seed)
	}
	return drawTenants(plan, max(1, int(math.Round(in.Fraction*float64(len(plan.Tenants))))), seed)
}

// drawTenants picks n tenants with the drill's seed, ordered by id.
func drawTenants(plan *fixtures.Plan, n int, seed uint64) []fixtures.Tenant {
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
