I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_network --label deployer.instance=c1 deployer-c1 || exit 1
dpl_network --label deployer.instance=c1 deployer-c1.db || exit 1
dpl_network --label deployer.instance=c1 deployer-c1.cache || exit 1
dpl_network --label deployer.instance=c1 deployer-c1.app || exit 1
pids=
dpl_up db c1.db '' --dpl-join deployer-c1.db=db.c1 -d --label deployer.release=1 --name c1.db --label deployer.instance=c1 --label deployer.service=db --label deployer.config-hash=6b7eb1edc5c35290 --network deployer-c1 --network-alias db.c1 --restart unless-stopped --init postgres & pids="$pids $!"
dpl_up cache c1.cache '' --dpl-join deployer-c1.cache=cache.c1 -d --label deployer.release=1 --name c1.cache --label deployer.instance=c1 --label deployer.service=cache --label deployer.config-hash=6766f72cc78409cc --network deployer-c1 --network-alias cache.c1 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
pids=
dpl_up app c1.app '' --dpl-join deployer-c1.app=app.c1 -d --label deployer.release=1 --name c1.app --label deployer.exposed.DB=db:sql --label deployer.exposed.REDIS=cache:redis --label deployer.instance=c1 --label deployer.service=app --label deployer.config-hash=0f2b3f38b2847737 --network deployer-c1 --network-alias app.c1 -e DB=db.c1:5432 -e REDIS=cache.c1:6379 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
pids=
dpl_up web c1.web '' --label deployer.release=1 -d --name c1.web --label deployer.exposed.APP=app:http --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=723cc8b09da8e4ad --network deployer-c1 --network-alias web.c1 -e APP=app.c1:8000 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
