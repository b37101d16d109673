I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_first web c1.web c1.web.r1 --label deployer.release=2 -d --name c1.web.next --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=0cd9e491a1e52c65 --network deployer-c1 --network-alias web.c1 -e A=2 --restart unless-stopped --init team/app || exit 1
