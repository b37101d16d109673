I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_router_up '{"admin":{"listen":"localhost:2019"},"apps":{"http":{"grace_period":"2s","http_port":80,"https_port":443,"servers":{"http":{"listen":[":80"],"routes":[{"handle":[{"handler":"static_response","headers":{"Location":["https://{http.request.host}{http.request.uri}"]},"status_code":308}],"match":[{"host":["shop.example"]}]},{"handle":[{"body":"no site is served at this address\n","handler":"static_response","status_code":404}]}]},"https":{"automatic_https":{"disable_redirects":true},"listen":[":443"],"protocols":["h1","h2"],"routes":[{"handle":[{"handler":"reverse_proxy","load_balancing":{"selection_policy":{"policy":"round_robin"},"try_duration":"60s","try_interval":"250ms"},"upstreams":[{"dial":"r1.web.1.c1:8080"},{"dial":"r1.web.2.c1:8080"},{"dial":"r1.web.3.c1:8080"}]}],"match":[{"host":["shop.example"]}],"terminal":true}]}}},"pki":{"certificate_authorities":{"local":{"install_trust":false}}},"tls":{"automation":{"policies":[{"issuers":[{"module":"internal"}]}]}}}}
' 3a8048ed572cc1c3 --dpl-join deployer-c1 --dpl-sysctl net.ipv4.tcp_migrate_req=1 -d --name deployer-router --label deployer.router=3a8048ed572cc1c3 --restart unless-stopped --network deployer-router -p 80:80 -p 443:443 -e XDG_DATA_HOME=/deployer/data -e XDG_CONFIG_HOME=/deployer/config caddy:2 caddy run --config /deployer/caddy.json || exit 1
dpl_route_1() { dpl_route_move "$1" deployer-c1 8080 /up; }
pids=
dpl_up --dpl-route dpl_route_1 web c1.web '' --label deployer.release=2 --network-alias r2.web.c1 -d --name c1.web --label deployer.instance=c1 --label deployer.route=8080 --label deployer.service=web --label deployer.config-hash=5f2a4469bcd15217 --network deployer-c1 --network-alias web.c1 -e A=1 --restart unless-stopped --init team/app & pids="$pids $!"
failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1
dpl_router_set '{"format": 2, "routes": [
  {"domain": "shop.example", "health": "/up", "instance": "c1", "port": "8080", "service": "web", "upstreams": ["r2.web.c1:8080"]}
]}
' '{"admin":{"listen":"localhost:2019"},"apps":{"http":{"grace_period":"2s","http_port":80,"https_port":443,"servers":{"http":{"listen":[":80"],"routes":[{"handle":[{"handler":"static_response","headers":{"Location":["https://{http.request.host}{http.request.uri}"]},"status_code":308}],"match":[{"host":["shop.example"]}]},{"handle":[{"body":"no site is served at this address\n","handler":"static_response","status_code":404}]}]},"https":{"automatic_https":{"disable_redirects":true},"listen":[":443"],"protocols":["h1","h2"],"routes":[{"handle":[{"handler":"reverse_proxy","load_balancing":{"try_duration":"60s","try_interval":"250ms"},"upstreams":[{"dial":"r2.web.c1:8080"}]}],"match":[{"host":["shop.example"]}],"terminal":true}]}}},"pki":{"certificate_authorities":{"local":{"install_trust":false}}},"tls":{"automation":{"policies":[{"issuers":[{"module":"internal"}]}]}}}}
' || exit 1
sleep 2
dpl_down web 3 || exit 1
dpl_down web 2 || exit 1
dpl_down web 1 || exit 1
