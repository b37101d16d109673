I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0
pids=
dpl_up web c1.web '' --label deployer.release=1 -d --name c1.web --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=f5e6da4ac22aee0e -e 'KEY=two
lines' -e TZ=UTC --env-file /dev/fd/5 --restart unless-stopped --init team/app 5<<'@@deployer-0123456789abcdef' & pids="$pids $!"
PW=it's $secret
@@deployer-0123456789abcdef
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
