/*
 * mknbft: write an NBFT (NVMe Boot Firmware Table, NVMe Boot Specification 1.0) for a test.
 *
 *   mknbft -o FILE --hostnqn NQN [--hostid UUID]
 *          [--hfi MAC,IP/PREFIX[,vlan=N][,gw=IP][,dhcp]]...
 *          [--ssns HFIS,TRADDR,TRSVCID,SUBNQN[,unavailable][,hdgst][,ddgst][,nsid=N]]...
 *          [--discovery HFI,URI[,NQN]]...
 *          [--bad ssns-nqn-offset|checksum|length]
 *
 * HFIs, SSNSes and discovery descriptors are numbered from 1 in the order given. HFIS is the
 * SSNS's primary HFI, then "+N" for each further one: "1" (the list repeats the primary, as
 * firmware writes it), "1+2" (a second path), "1+" (an empty secondary list, which the
 * specification allows and libnvme refuses). IPv4 and IPv6 addresses both work.
 *
 * The table is laid out as the firmware tables we have seen: header, control descriptor, host
 * descriptor, the descriptor lists, then one heap holding the HFI transport info, addresses and
 * strings. The byte sum is 0 (qemu's -acpitable rewrites length and checksum anyway, a file read
 * by --nbft-path is checked). --bad breaks one thing on purpose: the first SSNS's subsystem NQN
 * points past the end of the table, the checksum is off by one, or the header's length is
 * longer than the file.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HFI 4
#define MAX_SSNS 8
#define MAX_DISC 4
#define TABLE_MAX 8192

#define HEADER_LEN 64
#define CONTROL_OFF 64
#define HOST_OFF 128
#define HOST_LEN 32
#define HFI_LEN 32
#define HFI_TCP_LEN 128
#define SSNS_LEN 128
#define DISC_LEN 32

static uint8_t table[TABLE_MAX];
static size_t heap_start, heap_end;

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "mknbft: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

static void put8(size_t at, unsigned v) { table[at] = (uint8_t)v; }
static void put16(size_t at, unsigned v) { put8(at, v & 0xff); put8(at + 1, (v >> 8) & 0xff); }
static void put32(size_t at, uint32_t v) { put16(at, v & 0xffff); put16(at + 2, v >> 16); }

/* heap_add: LEN bytes into the heap; returns their offset. */
static size_t heap_add(const void *bytes, size_t len)
{
	size_t at = heap_end;
	if (at + len > TABLE_MAX)
		die("the table does not fit in 8 KiB", NULL);
	memcpy(table + at, bytes, len);
	heap_end += len;
	return at;
}

/* heap_obj_at: a heap object (u32 offset, u16 length) at AT describing OFF, LEN. */
static void heap_obj_at(size_t at, size_t off, size_t len)
{
	put32(at, (uint32_t)off);
	put16(at + 4, (unsigned)len);
}

/* heap_string: STR and a NUL after it; the object's length excludes the NUL. */
static void heap_string(size_t at, const char *str)
{
	size_t len = strlen(str);
	size_t off = heap_add(str, len + 1);
	heap_obj_at(at, off, len);
}

/* parse_ip: an IPv4 or IPv6 address as the 16 bytes of the specification (IPv4-mapped). */
static int parse_ip(const char *text, uint8_t out[16])
{
	struct in_addr v4;
	memset(out, 0, 16);
	if (inet_pton(AF_INET, text, &v4) == 1) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return 4;
	}
	return inet_pton(AF_INET6, text, out) == 1 ? 6 : 0;
}

static int parse_mac(const char *text, uint8_t mac[6])
{
	unsigned b[6];
	char end;
	if (sscanf(text, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6)
		return 0;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return 0;
		mac[i] = (uint8_t)b[i];
	}
	return 1;
}

/*
 * parse_uuid: UUID text into the 16 bytes of an EFI GUID (the first three groups little-endian),
 * the order firmware stores the host ID in. (nvme nbft show prints the bytes as they lie, so its
 * "id" is not the text given here; the host ID connected with is.)
 */
static int parse_uuid(const char *text, uint8_t out[16])
{
	uint8_t b[16];
	int n = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '-')
			continue;
		unsigned v;
		if (n == 16 || sscanf(p, "%2x", &v) != 1 || !p[1])
			return 0;
		b[n++] = (uint8_t)v;
		p++;
	}
	if (n != 16)
		return 0;
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (int i = 0; i < 16; i++)
		out[i] = b[order[i]];
	return 1;
}

/* next_field: the text up to the next comma (the comma becomes a NUL), or NULL at the end. */
static char *next_field(char **rest)
{
	char *f = *rest;
	if (!f)
		return NULL;
	char *c = strchr(f, ',');
	if (c) {
		*c = 0;
		*rest = c + 1;
	} else {
		*rest = NULL;
	}
	return f;
}

struct hfi {
	uint8_t mac[6], ip[16], gw[16];
	unsigned prefix, vlan;
	int dhcp, has_gw;
};

struct ssns {
	unsigned primary, nsec, sec[MAX_HFI + 1]; /* the primary first, then up to MAX_HFI more */
	uint8_t traddr[16];
	int traddr_len;
	char *trsvcid, *nqn;
	int unavailable, hdgst, ddgst;
	uint32_t nsid;
};

struct disc {
	unsigned hfi;
	char *uri, *nqn;
};

static struct hfi hfis[MAX_HFI];
static struct ssns ssnss[MAX_SSNS];
static struct disc discs[MAX_DISC];
static int nhfi, nssns, ndisc;

static void parse_hfi(char *arg)
{
	char *rest = arg, *f, *slash;
	struct hfi *h;
	if (nhfi == MAX_HFI)
		die("too many --hfi", arg);
	h = &hfis[nhfi++];
	if (!(f = next_field(&rest)) || !parse_mac(f, h->mac))
		die("--hfi: bad MAC", f);
	if (!(f = next_field(&rest)) || !(slash = strchr(f, '/')))
		die("--hfi: IP/PREFIX expected", f);
	*slash = 0;
	h->prefix = (unsigned)strtoul(slash + 1, NULL, 10);
	if (!parse_ip(f, h->ip) || h->prefix > 128)
		die("--hfi: bad IP/PREFIX", f);
	while ((f = next_field(&rest))) {
		if (!strncmp(f, "vlan=", 5))
			h->vlan = (unsigned)strtoul(f + 5, NULL, 10);
		else if (!strncmp(f, "gw=", 3) && parse_ip(f + 3, h->gw))
			h->has_gw = 1;
		else if (!strcmp(f, "dhcp"))
			h->dhcp = 1;
		else
			die("--hfi: unknown field", f);
	}
}

static void parse_ssns(char *arg)
{
	char *rest = arg, *f, *p;
	struct ssns *s;
	if (nssns == MAX_SSNS)
		die("too many --ssns", arg);
	s = &ssnss[nssns++];
	if (!(f = next_field(&rest)))
		die("--ssns: HFIS expected", NULL);
	s->primary = (unsigned)strtoul(f, &p, 10);
	if (*p == 0) {
		s->sec[s->nsec++] = s->primary;
	} else {
		while (*p == '+') {
			if (p[1] == 0)
				break;
			if (s->nsec == MAX_HFI)
				die("--ssns: too many HFIs", f);
			s->sec[s->nsec++] = (unsigned)strtoul(p + 1, &p, 10);
		}
		if (*p != '+' && *p != 0)
			die("--ssns: bad HFIS", f);
		/* "1+2": the primary and the second; "1+": nothing */
		if (s->nsec) {
			memmove(s->sec + 1, s->sec, s->nsec * sizeof s->sec[0]);
			s->sec[0] = s->primary;
			s->nsec++;
		}
	}
	if (!(f = next_field(&rest)) || !(s->traddr_len = parse_ip(f, s->traddr)))
		die("--ssns: bad TRADDR", f);
	if (!(s->trsvcid = next_field(&rest)) || !(s->nqn = next_field(&rest)))
		die("--ssns: TRSVCID and SUBNQN expected", NULL);
	while ((f = next_field(&rest))) {
		if (!strcmp(f, "unavailable"))
			s->unavailable = 1;
		else if (!strcmp(f, "hdgst"))
			s->hdgst = 1;
		else if (!strcmp(f, "ddgst"))
			s->ddgst = 1;
		else if (!strncmp(f, "nsid=", 5))
			s->nsid = (uint32_t)strtoul(f + 5, NULL, 0);
		else
			die("--ssns: unknown field", f);
	}
}

static void parse_disc(char *arg)
{
	char *rest = arg, *f;
	struct disc *d;
	if (ndisc == MAX_DISC)
		die("too many --discovery", arg);
	d = &discs[ndisc++];
	if (!(f = next_field(&rest)))
		die("--discovery: HFI expected", NULL);
	d->hfi = (unsigned)strtoul(f, NULL, 10);
	if (!(d->uri = next_field(&rest)))
		die("--discovery: URI expected", NULL);
	d->nqn = rest;
}

static void usage(void)
{
	fprintf(stderr, "usage: mknbft -o FILE --hostnqn NQN [--hostid UUID] [--hfi MAC,IP/PREFIX[,vlan=N][,gw=IP][,dhcp]]...\n"
			"       [--ssns HFIS,TRADDR,TRSVCID,SUBNQN[,unavailable][,hdgst][,ddgst][,nsid=N]]...\n"
			"       [--discovery HFI,URI[,NQN]]... [--bad ssns-nqn-offset|checksum|length]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "hostnqn", required_argument, NULL, 'q' },
		{ "hostid", required_argument, NULL, 'I' },
		{ "hfi", required_argument, NULL, 'f' },
		{ "ssns", required_argument, NULL, 's' },
		{ "discovery", required_argument, NULL, 'd' },
		{ "bad", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *hostnqn = NULL, *hostid = NULL, *bad = "";
	int opt;

	while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'q': hostnqn = optarg; break;
		case 'I': hostid = optarg; break;
		case 'f': parse_hfi(optarg); break;
		case 's': parse_ssns(optarg); break;
		case 'd': parse_disc(optarg); break;
		case 'b': bad = optarg; break;
		default: usage();
		}
	}
	if (!out || !hostnqn || optind != argc)
		usage();
	if (*bad && strcmp(bad, "ssns-nqn-offset") && strcmp(bad, "checksum") && strcmp(bad, "length"))
		die("unknown --bad", bad);
	if (!strcmp(bad, "ssns-nqn-offset") && nssns == 0)
		die("--bad ssns-nqn-offset needs an --ssns", NULL);
	for (int i = 0; i < nssns; i++) {
		if (ssnss[i].primary < 1 || ssnss[i].primary > (unsigned)nhfi)
			die("--ssns names an HFI that is not given", ssnss[i].nqn);
	}

	size_t hfi_off = HOST_OFF + HOST_LEN;
	size_t ssns_off = hfi_off + (size_t)nhfi * HFI_LEN;
	size_t disc_off = ssns_off + (size_t)nssns * SSNS_LEN;
	heap_start = heap_end = disc_off + (size_t)ndisc * DISC_LEN;

	/* Header; length, heap and checksum at the end. */
	memcpy(table, "NBFT", 4);
	put8(8, 1);
	memcpy(table + 10, "NVMMON", 6);
	memcpy(table + 16, "VMTEST  ", 8);
	put32(24, 1);
	memcpy(table + 28, "NVMM", 4);
	put32(32, 1);
	put8(50, 0);

	/* Control descriptor. */
	size_t c = CONTROL_OFF;
	put8(c + 0, 1);
	put8(c + 1, 1);
	put8(c + 2, 0);
	put16(c + 4, 64);
	put8(c + 6, 1);
	heap_obj_at(c + 8, HOST_OFF, HOST_LEN);
	put8(c + 14, 1);
	put32(c + 16, (uint32_t)hfi_off);
	put16(c + 20, HFI_LEN);
	put8(c + 22, 1);
	put8(c + 23, (unsigned)nhfi);
	put32(c + 24, (uint32_t)ssns_off);
	put16(c + 28, SSNS_LEN);
	put8(c + 30, 1);
	put8(c + 31, (unsigned)nssns);
	put32(c + 40, (uint32_t)disc_off);
	put16(c + 44, DISC_LEN);
	put8(c + 46, 1);
	put8(c + 47, (unsigned)ndisc);

	/* Host descriptor: valid, host NQN configured, host ID configured when given. */
	put8(HOST_OFF + 0, 2);
	put8(HOST_OFF + 1, 0x01 | 0x04 | (hostid ? 0x02 : 0));
	if (hostid && !parse_uuid(hostid, table + HOST_OFF + 2))
		die("bad --hostid", hostid);
	heap_string(HOST_OFF + 18, hostnqn);

	for (int i = 0; i < nhfi; i++) {
		size_t d = hfi_off + (size_t)i * HFI_LEN;
		struct hfi *h = &hfis[i];
		uint8_t tcp[HFI_TCP_LEN] = { 0 };
		put8(d + 0, 3);
		put8(d + 1, (unsigned)i + 1);
		put8(d + 2, 1);
		put8(d + 3, 3);
		tcp[0] = 7;
		tcp[1] = 1;
		tcp[2] = 3;
		tcp[3] = 1;
		tcp[4] = (uint8_t)(i + 1);
		tcp[6] = 0x01 | (h->has_gw ? 0x02 : 0);
		memcpy(tcp + 11, h->mac, 6);
		tcp[17] = h->vlan & 0xff;
		tcp[18] = (h->vlan >> 8) & 0xff;
		tcp[19] = h->dhcp ? 3 : 1; /* IP origin: DHCP or manual */
		memcpy(tcp + 20, h->ip, 16);
		tcp[36] = (uint8_t)h->prefix;
		memcpy(tcp + 37, h->gw, 16);
		size_t at = heap_add(tcp, sizeof tcp);
		heap_obj_at(d + 16, at, sizeof tcp);
	}

	for (int i = 0; i < nssns; i++) {
		size_t d = ssns_off + (size_t)i * SSNS_LEN;
		struct ssns *s = &ssnss[i];
		uint8_t list[MAX_HFI + 1];
		put8(d + 0, 4);
		put16(d + 1, (unsigned)i + 1);
		put16(d + 3, 0x0001 | (s->unavailable ? 0x0100 : 0x0080));
		put8(d + 5, 3);
		put16(d + 6, 0x0001 | (s->hdgst ? 0x0002 : 0) | (s->ddgst ? 0x0004 : 0));
		heap_obj_at(d + 10, heap_add(s->traddr, 16), 16);
		heap_string(d + 16, s->trsvcid);
		put32(d + 24, s->nsid);
		put8(d + 46, s->primary);
		for (unsigned j = 0; j < s->nsec; j++)
			list[j] = (uint8_t)s->sec[j];
		if (s->nsec)
			heap_obj_at(d + 48, heap_add(list, s->nsec), s->nsec);
		heap_string(d + 54, s->nqn);
	}

	for (int i = 0; i < ndisc; i++) {
		size_t d = disc_off + (size_t)i * DISC_LEN;
		struct disc *x = &discs[i];
		put8(d + 0, 6);
		put8(d + 1, 1);
		put8(d + 2, (unsigned)i + 1);
		put8(d + 3, x->hfi);
		heap_string(d + 6, x->uri);
		if (x->nqn && *x->nqn)
			heap_string(d + 12, x->nqn);
	}

	size_t length = heap_end;
	put32(4, (uint32_t)length);
	put32(36, (uint32_t)heap_start);
	put32(40, (uint32_t)(heap_end - heap_start));
	if (!strcmp(bad, "ssns-nqn-offset"))
		put32(ssns_off + 54, (uint32_t)length + 16);
	if (!strcmp(bad, "length"))
		put32(4, (uint32_t)length + 100);
	uint8_t sum = 0;
	for (size_t i = 0; i < length; i++)
		sum = (uint8_t)(sum + table[i]);
	table[9] = (uint8_t)(0x100 - sum);
	if (!strcmp(bad, "checksum"))
		table[9]++;

	FILE *f = fopen(out, "wb");
	if (!f || fwrite(table, 1, length, f) != length || fclose(f) != 0) {
		perror(out);
		return 1;
	}
	return 0;
}
