2675
I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
dpl_first web c1.web c1.web.r1 --label deployer.release=2 -d --name c1.web.next --label deployer.instance=c1 --label deployer.service=web --label deployer.config-hash=0cd9e491a1e52c65 --network deployer-c1 --network-alias web.c1 -e A=2 --restart unless-stopped --init team/app || exit 1
dpl_put "$D/template.yaml" 'web: {image: team/app, env: {A: '"'"'2'"'"'}}
' || exit 1
dpl_put "$D/state.json" '{
  "deployed_at": "2024-01-02T00:00:00+00:00",
  "deployed_by": "ops@laptop",
  "endpoints": {},
  "format": 1,
  "instance": "c1",
  "release": 2,
  "routes": {},
  "scale": {},
  "secrets": {},
  "services": {
    "web": {
      "config_hash": "0cd9e491a1e52c65",
      "container": "c1.web",
      "image_id": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "spec": {
        "cmd": [],
        "entrypoint": null,
        "env": [
          [
            "A",
            "2"
          ]
        ],
        "flags": [
          "--restart",
          "unless-stopped",
          "--init"
        ],
        "host_dirs": [],
        "image": "team/app",
        "instance": "c1",
        "labels": [
          [
            "deployer.instance",
            "c1"
          ],
          [
            "deployer.service",
            "web"
          ]
        ],
        "mounts": [],
        "networks": [
          [
            "deployer-c1",
            "web.c1"
          ]
        ],
        "ports": [],
        "secrets": [],
        "service": "web"
      }
    }
  },
  "template": "app.yaml",
  "variables": {}
}
' || exit 1
dpl_keep_template 999723c95c4f57f6 'web: {image: team/app, env: {A: '"'"'2'"'"'}}
' || exit 1
dpl_line='{"by":"ops@laptop","changes":{"web":"recreate: env.A changed"},"endpoints":{},"note":"","release":2,"result":"ok","routes":{},"secrets":{},"services":{"web":{"config_hash":"0cd9e491a1e52c65","container":"c1.web","image_id":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spec":{"cmd":[],"entrypoint":null,"env":[["A","2"]],"flags":["--restart","unless-stopped","--init"],"host_dirs":[],"image":"team/app","instance":"c1","labels":[["deployer.instance","c1"],["deployer.service","web"]],"mounts":[],"networks":[["deployer-c1","web.c1"]],"ports":[],"secrets":[],"service":"web"}}},"template":"app.yaml","template_sha256":"999723c95c4f57f6","time":"2024-01-02T00:00:00+00:00","variables":{}}'
dpl_trace append "$D/history.jsonl" $((${#dpl_line} + 1))
(umask 077 && printf "%s\n" "$dpl_line" >>"$D/history.jsonl") || exit 1
dpl_trim_history 5 || exit 1
# @@deployer-0123456789abcdef end
