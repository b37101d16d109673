I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
mkdir -p /srv/deployer/volumes/c1/db/var-lib-postgresql-data && chmod 700 "$V" && dpl_within "$V/$I" /srv/deployer/volumes/c1/db/var-lib-postgresql-data || exit 1
dpl_first web c1.web c1.web.r1 --label deployer.release=2 -d --name c1.web.next --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=0cd9e491a1e52c65 --network deployer-c1 --network-alias web.c1 -e A=2 --restart unless-stopped --init team/app || exit 1
dpl_up db c1.db c1.db.r1 --label deployer.release=2 -d --name c1.db --label deployer.instance=c1 --label deployer.service=db --label deployer.config-hash=e5a5c7c07c5a175a --network deployer-c1 --network-alias db.c1 -e B=2 -v /srv/deployer/volumes/c1/db/var-lib-postgresql-data:/var/lib/postgresql/data --restart unless-stopped --init postgres || exit 1
pids=
dpl_up cache c1.cache '' --label deployer.release=2 -d --name c1.cache --label deployer.instance=c1 --label deployer.service=cache --label deployer.config-hash=374451c7046dbbe5 --network deployer-c1 --network-alias cache.c1 --restart unless-stopped --init redis & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
dpl_down old || exit 1
