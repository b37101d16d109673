I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0
pids=
dpl_up db c1.db '' --label deployer.release=1 -d --name c1.db --label deployer.instance=c1 --label deployer.service=db --label deployer.config-hash=b625d65be43c417d -p 172.17.0.1:30000:5432 --restart unless-stopped --init postgres & pids="$pids $!"
dpl_up cache c1.cache '' --label deployer.release=1 -d --name c1.cache --label deployer.instance=c1 --label deployer.service=cache --label deployer.config-hash=0621893eaa4bf73a -p 172.17.0.1:30001:6379 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
pids=
dpl_up app c1.app '' --label deployer.release=1 -d --name c1.app --label deployer.exposed.DB=db:sql --label deployer.exposed.REDIS=cache:redis --label deployer.instance=c1 --label deployer.service=app --label deployer.config-hash=8b98392356cc2f64 -p 172.17.0.1:30002:8000 -e DB=172.17.0.1:30000 -e REDIS=172.17.0.1:30001 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
pids=
dpl_up web c1.web '' --label deployer.release=1 -d --name c1.web --label deployer.exposed.APP=app:http --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=17e3e987abfad472 -e APP=172.17.0.1:30002 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
