// Package truth is pgdrill's ground truth: what every tenant's data is, computed inside
// Postgres so that millions of rows are compared without leaving the servers.
//
// A Snapshot holds, per shard, tenant and table, a row count and an order-independent content
// hash (the sum, as numeric, of a 64-bit hash of every row's text: a sum and not an xor, so a
// duplicated row changes it). Compare finds the tenant tables whose fingerprints differ between
// two snapshots; Diff then fetches per-row hashes keyed by primary key for those tables only and
// names the rows that are missing, extra, changed or duplicated. CheckPlacement checks that every
// tenant's rows live on the shard the catalog names and nowhere else.
//
// All three layouts of package fixtures are understood: shared tables (rows belong to the tenant
// in their tenant_id column), schema per tenant and database per tenant (rows belong to the
// tenant whose schema or database holds them, whatever their tenant_id says).
package truth
