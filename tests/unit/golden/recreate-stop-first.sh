I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
mkdir -p /srv/deployer/volumes/c1/db/var-lib-postgresql-data && chmod 700 "$V" && dpl_within "$V/$I" /srv/deployer/volumes/c1/db/var-lib-postgresql-data || exit 1
dpl_up db c1.db c1.db.r1 --label deployer.release=2 -d --name c1.db --label deployer.instance=c1 --label deployer.service=db --label deployer.config-hash=e5a5c7c07c5a175a --network deployer-c1 --network-alias db.c1 -e B=2 -v /srv/deployer/volumes/c1/db/var-lib-postgresql-data:/var/lib/postgresql/data --restart unless-stopped --init postgres || exit 1
dpl_up proxy c1.proxy c1.proxy.r1 --label deployer.release=2 -d --name c1.proxy --label deployer.instance=c1 --label deployer.service=proxy --label deployer.config-hash=a509b7091b861562 -p 8080:80 --network deployer-c1 --network-alias proxy.c1 -e C=2 --restart unless-stopped --init team/app || exit 1
