# gen_traffic.awk - writes a deterministic synthetic connection log for the
# port-scan example, one JSON object per line, in event-time order:
#
#   {"ts":1700000100000,"src_ip":"10.0.0.7","dst_ip":"192.168.3.41","dst_port":443}
#
#   awk -f examples/port-scan/gen_traffic.awk > connections.jsonl
#
# 20 minutes of traffic from ts 1700000100000 (2023-11-14T22:15:00Z, a multiple
# of 5 minutes), in ticks of 100 ms:
#
#   10.0.0.1 .. 10.0.0.50  normal hosts: each talks to its own 3-8 servers
#                          (192.168.x.y), about one connection every 5 s;
#   10.0.0.99              a busy proxy: 90 distinct destinations
#                          (203.0.113.1 .. 203.0.113.90), 2 connections a second.
#                          Close to the threshold of 100, never above it;
#   10.0.9.1               scanner: 300 hosts of 172.16.0.0/16 on port 445,
#                          one every 400 ms, minutes 3 to 5;
#   10.0.9.2               scanner: 120 hosts of 172.17.0.0/16 on port 22,
#                          one every 500 ms, minutes 12 to 13;
#   10.0.9.3               slow scanner: 514 hosts of 172.18.0.0/16 on port 3389,
#                          one every 700 ms, minutes 8 to 14.
#
# The pseudo-random numbers come from MINSTD (x = x * 48271 mod 2^31-1), which
# awk computes exactly in doubles: gawk, mawk and busybox awk write the same
# file, byte for byte.
function rnd(n) {
  seed = (seed * 48271) % 2147483647
  return seed % n
}
function emit(tick, off, src, dst, port) {
  printf "{\"ts\":%.0f,\"src_ip\":\"%s\",\"dst_ip\":\"%s\",\"dst_port\":%d}\n", T0 + tick * 100 + off, src, dst, port
}
BEGIN {
  T0 = 1700000100000
  TICKS = 12000 # 20 minutes of 100 ms
  seed = 20240611
  split("80 443 53 8080", ports, " ")
  for (h = 1; h <= 50; h++) {
    k[h] = 3 + rnd(6)
    for (j = 1; j <= k[h]; j++) pool[h, j] = "192.168." rnd(8) "." (1 + rnd(254))
  }
  s1 = s2 = s3 = 0
  for (t = 0; t < TICKS; t++) {
    # normal hosts, in host order (offsets 1..50 ms keep the file sorted by ts)
    for (h = 1; h <= 50; h++)
      if (rnd(50) == 0) emit(t, h, "10.0.0." h, pool[h, 1 + rnd(k[h])], ports[1 + rnd(4)])
    if (rnd(5) == 0) emit(t, 60, "10.0.0.99", "203.0.113." (1 + rnd(90)), 3128)
    if (t >= 1800 && t < 3000 && t % 4 == 0) {
      emit(t, 70, "10.0.9.1", "172.16." int(s1 / 250) "." (1 + s1 % 250), 445)
      s1++
    }
    if (t >= 7200 && t < 7800 && t % 5 == 0) {
      emit(t, 80, "10.0.9.2", "172.17." int(s2 / 250) "." (1 + s2 % 250), 22)
      s2++
    }
    if (t >= 4800 && t < 8400 && t % 7 == 0) {
      emit(t, 90, "10.0.9.3", "172.18." int(s3 / 250) "." (1 + s3 % 250), 3389)
      s3++
    }
  }
}
