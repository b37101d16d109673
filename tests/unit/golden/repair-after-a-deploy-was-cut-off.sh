I=c1; D="$S/instances/$I"
DPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16
t0=$(dpl_now)
docker rm -f c1.web.next >/dev/null || exit 1
dpl_mark ok web "$t0" "$(dpl_now)"
