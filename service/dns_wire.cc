#include "service/dns_wire.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <set>

// After the standard headers: under clang, ldns's macros break libstdc++'s <string>.
#include <ldns/ldns.h>

namespace netcell::service {
namespace {

std::string lower_name(const ldns_rdf* rdf) {
  char* text = ldns_rdf2str(rdf);
  std::string out = text != nullptr ? text : "";
  std::free(text);
  if (!out.empty() && out.back() == '.') out.pop_back();
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct PktDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktDeleter>;

Pkt parse(const std::uint8_t* data, std::size_t size) {
  ldns_pkt* pkt = nullptr;
  if (size < 12 || ldns_wire2pkt(&pkt, data, size) != LDNS_STATUS_OK) return nullptr;
  return Pkt(pkt);
}

}  // namespace

std::optional<Question> parse_query(const std::uint8_t* data, std::size_t size) {
  Pkt pkt = parse(data, size);
  if (!pkt || ldns_pkt_qr(pkt.get()) || ldns_pkt_get_opcode(pkt.get()) != LDNS_PACKET_QUERY ||
      ldns_pkt_qdcount(pkt.get()) != 1 || ldns_pkt_ancount(pkt.get()) != 0) {
    return std::nullopt;
  }
  const ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
  if (rr == nullptr) return std::nullopt;
  Question q;
  q.id = ldns_pkt_id(pkt.get());
  q.name = lower_name(ldns_rr_owner(rr));
  q.qtype = static_cast<std::uint16_t>(ldns_rr_get_type(rr));
  q.qclass = static_cast<std::uint16_t>(ldns_rr_get_class(rr));
  return q;
}

std::vector<std::uint8_t> error_reply(const std::uint8_t* query, std::size_t size,
                                      std::uint16_t rcode) {
  // The header and question of the query, as they came (a parsed query has exactly one), with
  // QR and RA set, the code, and no other section.
  std::vector<std::uint8_t> out;
  if (size < 12) return out;
  std::size_t end = 12;
  // The question: labels (no compression in a query's first name), then type and class.
  while (end < size && query[end] != 0) {
    if ((query[end] & 0xC0) != 0) return out;
    end += 1 + query[end];
  }
  end += 1 + 4;
  if (end > size) return out;
  out.assign(query, query + end);
  out[2] = static_cast<std::uint8_t>((out[2] | 0x80) & ~0x02);  // QR, not TC; keep opcode, RD
  out[3] = static_cast<std::uint8_t>(0x80 | (rcode & 0x0F));    // RA, the code
  out[4] = 0, out[5] = 1;                                       // one question
  for (int i = 6; i < 12; ++i) out[i] = 0;
  return out;
}

std::optional<Answer> read_answer(const std::uint8_t* data, std::size_t size,
                                  const Question& question) {
  Pkt pkt = parse(data, size);
  if (!pkt || !ldns_pkt_qr(pkt.get()) || ldns_pkt_id(pkt.get()) != question.id ||
      ldns_pkt_qdcount(pkt.get()) != 1) {
    return std::nullopt;
  }
  const ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
  if (q == nullptr || lower_name(ldns_rr_owner(q)) != question.name ||
      static_cast<std::uint16_t>(ldns_rr_get_type(q)) != question.qtype ||
      static_cast<std::uint16_t>(ldns_rr_get_class(q)) != question.qclass) {
    return std::nullopt;
  }
  Answer answer;
  answer.truncated = ldns_pkt_tc(pkt.get());
  answer.rcode = static_cast<std::uint16_t>(ldns_pkt_get_rcode(pkt.get()));
  const ldns_rr_list* rrs = ldns_pkt_answer(pkt.get());
  const std::size_t count = rrs != nullptr ? ldns_rr_list_rr_count(rrs) : 0;
  // The chain: the name, then every CNAME target reached from it within this answer.
  std::set<std::string> chain{question.name};
  std::optional<std::uint32_t> ttl;
  for (std::size_t round = 0; round < 16; ++round) {
    bool grew = false;
    for (std::size_t i = 0; i < count; ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(rrs, i);
      if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || ldns_rr_rd_count(rr) < 1) continue;
      if (!chain.count(lower_name(ldns_rr_owner(rr)))) continue;
      if (chain.insert(lower_name(ldns_rr_rdf(rr, 0))).second) {
        grew = true;
        ttl = std::min(ttl.value_or(UINT32_MAX), ldns_rr_ttl(rr));
      }
    }
    if (!grew) break;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(rrs, i);
    // A and AAAA records (an answer to either question may carry both).
    const ldns_rr_type type = ldns_rr_get_type(rr);
    if ((type != LDNS_RR_TYPE_A && type != LDNS_RR_TYPE_AAAA) || ldns_rr_rd_count(rr) < 1) {
      continue;
    }
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
    if (!chain.count(lower_name(ldns_rr_owner(rr)))) continue;
    const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
    const std::uint8_t* b = ldns_rdf_data(rdf);
    if (type == LDNS_RR_TYPE_A) {
      if (ldns_rdf_size(rdf) != 4) continue;
      std::uint32_t v4 = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                         (std::uint32_t{b[2]} << 8) | b[3];
      answer.addresses.push_back(IpAddress::v4(v4));
    } else {
      if (ldns_rdf_size(rdf) != 16) continue;
      std::array<std::uint8_t, 16> v6{};
      std::copy(b, b + 16, v6.begin());
      answer.addresses.push_back(IpAddress::v6(v6));
    }
    ttl = std::min(ttl.value_or(UINT32_MAX), ldns_rr_ttl(rr));
  }
  answer.ttl = ttl.value_or(0);
  return answer;
}

std::size_t udp_size_of(const std::uint8_t* query, std::size_t size) {
  Pkt q = parse(query, size);
  if (!q || !ldns_pkt_edns(q.get())) return 512;
  return std::max<std::size_t>(512, ldns_pkt_edns_udp_size(q.get()));
}

}  // namespace netcell::service
