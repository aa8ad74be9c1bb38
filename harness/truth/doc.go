// Package truth is pgdrill's ground truth: what every tenant's data, the tenant directory and the
// schema of every database are, computed inside Postgres so that millions of rows are compared
// without leaving the servers.
//
// A Snapshot holds, per shard, tenant and table, a row count and an order-independent content
// hash (the sum, as numeric, of a 64-bit hash of every row's text seeded with the table's column
// types: a sum and not an xor, so a duplicated row changes it, and typed, so a column retyped to
// text changes it). Compare finds the tenant tables whose fingerprints differ between two
// snapshots; Diff then fetches per-row hashes keyed by primary key for those tables only and
// names the rows that are missing, extra, changed or duplicated, setting apart the rows a write
// of unknown outcome touched that hold a state it allows. Replay rebuilds what a table must hold
// from its rows before (generated again, or kept) and the writes made since, in a temporary
// table. A Directory is the catalog's tenant directory row by row; a Schema fingerprints every
// object of every database by name (TakeSchema, CompareSchemas). CheckPlacement checks that every
// tenant's rows live on the shard the directory named before the incident and nowhere else.
//
// The databases being verified cannot steer the sessions that read them: ConfigureSession pins
// the search path to pg_catalog and turns row security off, and the hash SQL names every function
// by schema.
//
// All three layouts of package fixtures are understood: shared tables (rows belong to the tenant
// in their tenant_id column), schema per tenant and database per tenant (rows belong to the
// tenant whose schema or database holds them, whatever their tenant_id says).
package truth
