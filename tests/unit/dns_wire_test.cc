// The resolver's reading and writing of DNS messages (service/dns_wire.h), on messages built with
// ldns: queries it takes or refuses, refusals it writes, and the addresses it takes from answers.
#include "service/dns_wire.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

namespace netcell::service {
namespace {

std::vector<std::uint8_t> wire(ldns_pkt* pkt) {
  std::uint8_t* data = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&data, pkt, &size), LDNS_STATUS_OK);
  std::vector<std::uint8_t> out(data, data + size);
  std::free(data);
  ldns_pkt_free(pkt);
  return out;
}

std::vector<std::uint8_t> query(const char* name, ldns_rr_type type = LDNS_RR_TYPE_A,
                                std::uint16_t id = 0x1234) {
  ldns_pkt* pkt = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&pkt, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  ldns_pkt_set_id(pkt, id);
  return wire(pkt);
}

// An answer to `name` with the records given in zone-file form.
std::vector<std::uint8_t> answer(const char* name, std::uint16_t id,
                                 const std::vector<std::string>& records, bool tc = false) {
  ldns_pkt* pkt = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&pkt, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  ldns_pkt_set_id(pkt, id);
  ldns_pkt_set_qr(pkt, true);
  ldns_pkt_set_tc(pkt, tc);
  for (const auto& text : records) {
    ldns_rr* rr = nullptr;
    EXPECT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK) << text;
    ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
  }
  return wire(pkt);
}

TEST(DnsWire, AQueryIsReadLowerCaseWithoutTheRootDot) {
  auto q = query("WWW.Example.TEST.");
  auto parsed = parse_query(q.data(), q.size());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->id, 0x1234);
  EXPECT_EQ(parsed->name, "www.example.test");
  EXPECT_EQ(parsed->qtype, LDNS_RR_TYPE_A);
  EXPECT_EQ(parsed->qclass, LDNS_RR_CLASS_IN);
}

TEST(DnsWire, NotAQueryIsRefused) {
  auto a = answer("a.test.", 7, {"a.test. 60 IN A 192.0.2.1"});
  EXPECT_FALSE(parse_query(a.data(), a.size())) << "a response";
  std::vector<std::uint8_t> short_one(a.begin(), a.begin() + 11);
  EXPECT_FALSE(parse_query(short_one.data(), short_one.size()));
  auto q = query("a.test.");
  q.resize(q.size() - 3);  // the question cut
  EXPECT_FALSE(parse_query(q.data(), q.size()));
  std::vector<std::uint8_t> garbage(300, 0xFF);
  EXPECT_FALSE(parse_query(garbage.data(), garbage.size()));
}

TEST(DnsWire, ARefusalEchoesTheQuestionWithTheCode) {
  auto q = query("evil.test.", LDNS_RR_TYPE_TXT, 0xBEEF);
  auto r = error_reply(q.data(), q.size(), 5);
  ldns_pkt* pkt = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&pkt, r.data(), r.size()), LDNS_STATUS_OK);
  EXPECT_TRUE(ldns_pkt_qr(pkt));
  EXPECT_EQ(ldns_pkt_id(pkt), 0xBEEF);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt), LDNS_RCODE_REFUSED);
  EXPECT_EQ(ldns_pkt_qdcount(pkt), 1);
  EXPECT_EQ(ldns_pkt_ancount(pkt), 0);
  ldns_pkt_free(pkt);
  std::vector<std::uint8_t> tiny(5, 0);
  EXPECT_TRUE(error_reply(tiny.data(), tiny.size(), 5).empty());
}

TEST(DnsWire, AddressesOfTheNameAndOfItsCnameChainInThisAnswer) {
  Question q{42, "www.a.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN};
  auto a = answer("www.a.test.", 42,
                  {"www.a.test. 300 IN CNAME edge.cdn.test.", "edge.cdn.test. 20 IN A 192.0.2.7",
                   "unrelated.test. 5 IN A 192.0.2.99", "www.a.test. 100 IN A 192.0.2.8"});
  auto got = read_answer(a.data(), a.size(), q);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->addresses.size(), 2u) << "not the unrelated record";
  EXPECT_EQ(got->addresses[0], IpAddress::v4(0xC0000207));
  EXPECT_EQ(got->addresses[1], IpAddress::v4(0xC0000208));
  EXPECT_EQ(got->ttl, 20u) << "the least TTL on the way";
  EXPECT_FALSE(got->truncated);
}

TEST(DnsWire, AnAnswerToAnotherQuestionIsNotTaken) {
  Question q{42, "a.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN};
  auto other_id = answer("a.test.", 43, {"a.test. 60 IN A 192.0.2.1"});
  EXPECT_FALSE(read_answer(other_id.data(), other_id.size(), q));
  auto other_name = answer("b.test.", 42, {"b.test. 60 IN A 192.0.2.1"});
  EXPECT_FALSE(read_answer(other_name.data(), other_name.size(), q));
  auto truncated = answer("a.test.", 42, {}, true);
  auto got = read_answer(truncated.data(), truncated.size(), q);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->truncated);
  EXPECT_TRUE(got->addresses.empty());
}

// A UDP client takes 512 bytes unless its EDNS record says more; a smaller EDNS size is 512 too.
TEST(DnsWire, AUdpClientsSizeIsItsEdnsSizeAndAtLeast512) {
  auto plain = query("a.test.");
  EXPECT_EQ(udp_size_of(plain.data(), plain.size()), 512u);
  for (std::uint16_t said : {std::uint16_t{4096}, std::uint16_t{1232}, std::uint16_t{100}}) {
    ldns_pkt* pkt = nullptr;
    ASSERT_EQ(
        ldns_pkt_query_new_frm_str(&pkt, "a.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
        LDNS_STATUS_OK);
    ldns_pkt_set_edns_udp_size(pkt, said);
    auto q = wire(pkt);
    EXPECT_EQ(udp_size_of(q.data(), q.size()), std::max<std::size_t>(512, said)) << said;
  }
  EXPECT_EQ(udp_size_of(plain.data(), 5), 512u) << "not a message";
}

}  // namespace
}  // namespace netcell::service
