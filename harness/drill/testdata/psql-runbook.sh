#!/bin/sh
# A team's own restore runbook, written with the Postgres client tools alone (psql, pg_ctl and
# pg_dump; no pgdrill): from the incident file pgdrill hands it, it recovers a sidecar from each
# harmed shard's base backup to just before each harmful transaction, copies the harmed tenants
# back into the live shard (one transaction per tenant), and removes the sidecar. The specs
# drill it to show that the incident file is enough to restore by one's own means.
set -eu

incident=$PGDRILL_INCIDENT_FILE
work=$PGDRILL_WORKDIR
cd "$work" # the account the servers run as can enter it, as pg_ctl run as that account must
tables="sites users app_installations projects issues comments attachments" # parents first

# ask runs SQL over the incident file's JSON (psql parses it, so no jq is needed).
ask() {
	printf '%s\n' "$1" | psql -X -At -q -v ON_ERROR_STOP=1 -d "$PGDRILL_CATALOG_DSN" -v doc="$(cat "$incident")"
}

layout=$(ask "SELECT :'doc'::json->>'layout';")
account=$(ask "SELECT :'doc'::json->'catalog'->>'account';")
bin=$(ask "SELECT :'doc'::json->'catalog'->>'bin_dir';")
as=""
if [ "$(id -u)" = 0 ]; then
	as="runuser -u $account --" # Postgres will not run as root
fi

ask "SELECT h->>'shard', coalesce(h->'recover_to'->>'xid', ''), coalesce(h->'recover_to'->>'lsn', ''),
		(SELECT string_agg(t, ' ') FROM json_array_elements_text(h->'tenants') t)
	FROM json_array_elements(:'doc'::json->'harms') h;" >"$work/harms"

n=0
while IFS='|' read -r shard xid lsn tenants; do
	n=$((n + 1))
	live=$(ask "SELECT s->>'dsn' FROM json_array_elements(:'doc'::json->'shards') s WHERE (s->>'index')::int = $shard;")
	archive=$(ask "SELECT s->>'wal_archive' FROM json_array_elements(:'doc'::json->'shards') s WHERE (s->>'index')::int = $shard;")
	backup=$(ask "SELECT s->'base_backup'->>'location' FROM json_array_elements(:'doc'::json->'shards') s WHERE (s->>'index')::int = $shard;")

	echo "harm $n on shard $shard (xid '$xid', lsn '$lsn'): tenants $tenants"
	# The WAL up to the harm must be in the archive before a sidecar can replay to it.
	segment=$(psql -X -At -v ON_ERROR_STOP=1 -d "$live" -c "SELECT pg_walfile_name(pg_switch_wal())" </dev/null)
	until [ "$(psql -X -At -d "$live" -c "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver" </dev/null)" = t ]; do sleep 0.05; done
	side=$work/side-$n
	cp -a "$backup" "$side"
	if [ -n "$as" ]; then chown -R "$account:" "$side"; fi
	chmod 700 "$side"
	if [ -n "$xid" ]; then target="recovery_target_xid = '$xid'"; else target="recovery_target_lsn = '$lsn'"; fi
	cat >>"$side/postgresql.auto.conf" <<-EOF
		listen_addresses = ''
		port = 5432
		unix_socket_directories = '$side'
		archive_mode = off
		restore_command = 'cp "$archive/%f" "%p"'
		$target
		recovery_target_inclusive = off
		recovery_target_action = promote
	EOF
	touch "$side/recovery.signal"
	$as "$bin/pg_ctl" -D "$side" -l "$side/log" -w -t 120 start </dev/null
	sidecar="host=$side user=postgres dbname=pgdrill"
	# Recovery is over once the sidecar promoted; a sidecar that stopped says why in its log.
	waited=0
	until [ "$(psql -X -At -d "$sidecar" -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null </dev/null)" = t ]; do
		waited=$((waited + 1))
		if [ $waited -gt 600 ] || ! $as "$bin/pg_ctl" -D "$side" status >/dev/null </dev/null; then
			echo "the sidecar of shard $shard did not promote:" >&2
			tail -20 "$side/log" >&2
			exit 1
		fi
		sleep 0.1
	done

	for tenant in $tenants; do
		case $layout in
		shared)
			{
				echo "BEGIN;"
				for t in $tables; do
					psql -X -q -d "$sidecar" -c "\copy (SELECT * FROM $t WHERE tenant_id = $tenant) TO '$side/$t.copy'" </dev/null
					printf '\\copy %s FROM %s\n' "$t" "'$side/$t.copy'" # printf: sh's echo reads \c as an escape
				done
				echo "COMMIT;"
			} | psql -X -q -v ON_ERROR_STOP=1 -d "$live"
			;;
		schema)
			"$bin/pg_dump" -d "$sidecar" -n "t_$tenant" | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$live"
			;;
		database)
			psql -X -q -v ON_ERROR_STOP=1 -d "$live" -c "CREATE DATABASE t_$tenant" </dev/null
			"$bin/pg_dump" -d "host=$side user=postgres dbname=t_$tenant" |
				psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$(echo "$live" | sed "s|/pgdrill?|/t_$tenant?|")"
			;;
		esac
		echo "  tenant $tenant is back"
	done
	$as "$bin/pg_ctl" -D "$side" -m fast -w stop </dev/null
	rm -rf "$side"
done <"$work/harms"
