/* fuzz_dp_wire.c - the data plane's reply decoders (dp_wire_decode_*) on
 * any bytes a PDP, or whatever answers on its socket, may send. A reply
 * that does not decode must never come back as an allow. Input: one
 * PdpResponse; the request ids expected are those of fuzz_wire_seeds.c
 * ("req-1", batch "batch-1" of "req-1" and "req-2"). */
#include "dp_wire.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tg_decision       d;
    static tg_usage          u[2];
    static tg_usage_ack      ack;
    static tg_usage_item_ack acks[2];
    char                     why[256];

    snprintf(u[0].request_id, sizeof(u[0].request_id), "req-1");
    snprintf(u[1].request_id, sizeof(u[1].request_id), "req-2");
    memset(&d, 0xa5, sizeof(d)); /* no stale allow from the last input */
    if (dp_wire_decode_decision(data, size, 65536, "req-1", &d, why,
                                sizeof(why)) != TG_OK) {
        (void)why;
    } else if (d.verdict != TG_VERDICT_ALLOW &&
               d.verdict != TG_VERDICT_DENY) {
        fprintf(stderr, "fuzz_dp_wire: decoded verdict %d\n", d.verdict);
        abort();
    }
    (void)dp_wire_decode_usage_ack(data, size, 65536, "req-1", &ack, why,
                                   sizeof(why));
    (void)dp_wire_decode_usage_batch_ack(data, size, 65536, "batch-1", u, 2,
                                         acks, why, sizeof(why));
    (void)dp_wire_decode_pong(data, size, "req-1");
    return 0;
}
