I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_first web c1.web c1.web.r3 --label deployer.release=4 -d --name c1.web.next --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=8e70993241f5cdc5 --network deployer-c1 --network-alias web.c1 -e A=3 --restart unless-stopped --init team/app || exit 1
dpl_remove c1.web.r2 c1.web.r1
