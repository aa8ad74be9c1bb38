package truth

// Misplacement is a tenant's rows found where the tenant does not live.
type Misplacement struct {
	Tenant int64 `json:"tenant"`
	// Shard is where the rows were found.
	Shard int `json:"shard"`
	// CatalogShard is where the tenant lives, by the directory as it was before the incident; -1
	// when the tenant was not in it at all.
	CatalogShard int `json:"catalog_shard"`
	// Rows is how many of the tenant's rows are on Shard.
	Rows int64 `json:"rows"`
}

// CheckPlacement returns every tenant of snap whose rows live on a shard other than its home
// (homes: the shard of every tenant by id, as a Directory taken before the incident names it),
// or that has no home. Homes come from before the incident, never from the live directory: a
// restore that routed a tenant elsewhere and moved its rows there must not make its own
// placement right. Where a home shard lacks rows is the diff's business, not placement's.
func CheckPlacement(homes map[int64]int, snap *Snapshot) []Misplacement {
	type at struct {
		tenant int64
		shard  int
	}
	rows := map[at]int64{}
	var order []at
	for _, e := range snap.Entries {
		k := at{e.Tenant, e.Shard}
		if _, ok := rows[k]; !ok {
			order = append(order, k)
		}
		rows[k] += e.Rows
	}
	var out []Misplacement
	for _, k := range order {
		shard, known := homes[k.tenant]
		if rows[k] == 0 || (known && shard == k.shard) {
			continue
		}
		if !known {
			shard = -1
		}
		out = append(out, Misplacement{Tenant: k.tenant, Shard: k.shard, CatalogShard: shard, Rows: rows[k]})
	}
	return out
}
