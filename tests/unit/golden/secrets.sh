I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_first worker c1.worker c1.worker.r1 --label deployer.release=2 -d --name c1.worker.next --label deployer.instance=c1 --label deployer.service=worker --label deployer.config-hash=c7bc6354e8751533 --network deployer-c1 --network-alias worker.c1 -e A=2 -e 'KEY=two
lines' -e TZ=UTC --env-file /dev/fd/5 --restart unless-stopped --init team/app 5<<'@@deployer-0123456789abcdef' || exit 1
PW=it's $secret
@@deployer-0123456789abcdef
pids=
dpl_up web c1.web '' --label deployer.release=2 -d --name c1.web --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=27476f3cba94adf9 --network deployer-c1 --network-alias web.c1 -e A=1 -e 'KEY=two
lines' -e TZ=UTC --env-file /dev/fd/5 --restart unless-stopped --init team/app 5<<'@@deployer-0123456789abcdef' & pids="$pids $!"
PW=it's $secret
@@deployer-0123456789abcdef
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
