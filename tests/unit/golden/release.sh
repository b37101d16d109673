I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_release web 600 --rm --label deployer.one-off=c1 --network deployer-c1 -e A=2 --init team/app migrate --all || exit 1
dpl_first web c1.web c1.web.r1 --label deployer.release=2 -d --name c1.web.next --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=0cd9e491a1e52c65 --network deployer-c1 --network-alias web.c1 -e A=2 --restart unless-stopped --init team/app || exit 1
dpl_release worker 600 --rm --label deployer.one-off=c1 --network deployer-c1 -e A=1 -e TZ=UTC --env-file /dev/fd/5 --init team/app warm 5<<'@@deployer-0123456789abcdef' || exit 1
KEY=k
PW=pw
@@deployer-0123456789abcdef
pids=
dpl_up worker c1.worker '' --label deployer.release=2 -d --name c1.worker --label deployer.instance=c1 --label deployer.service=worker --label deployer.config-hash=52cec264332830d2 --network deployer-c1 --network-alias worker.c1 -e A=1 -e TZ=UTC --env-file /dev/fd/5 --restart unless-stopped --init team/app 5<<'@@deployer-0123456789abcdef' & pids="$pids $!"
KEY=k
PW=pw
@@deployer-0123456789abcdef
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
