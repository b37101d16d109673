I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_network --label deployer.instance=c1 deployer-c1 || exit 1
mkdir -p /srv/deployer/volumes/c1/db/var-lib-postgresql-data && chmod 700 "$V" && dpl_within "$V/$I" /srv/deployer/volumes/c1/db/var-lib-postgresql-data || exit 1
pids=
dpl_up web c1.web '' --label deployer.release=1 -d --name c1.web --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=871fb84cbb8a12b2 --network deployer-c1 --network-alias web.c1 -e A=1 --restart unless-stopped --init team/app & pids="$pids $!"
dpl_up db c1.db '' --label deployer.release=1 -d --name c1.db --label deployer.instance=c1 --label deployer.service=db --label deployer.config-hash=39401fa158043c1c --network deployer-c1 --network-alias db.c1 -e B=1 -v /srv/deployer/volumes/c1/db/var-lib-postgresql-data:/var/lib/postgresql/data --restart unless-stopped --init postgres & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
