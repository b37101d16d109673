I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
mkdir -p /srv/deployer/volumes/c1/db/var-lib-postgresql-data && chmod 700 "$V" && dpl_within "$V/$I" /srv/deployer/volumes/c1/db/var-lib-postgresql-data || exit 1
dpl_again web c1.web c1.web.r2 c1.web.r1 || exit 1
dpl_back db c1.db c1.db.r2 c1.db.r1 || exit 1
