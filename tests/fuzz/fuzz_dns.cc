// libFuzzer target: the resolver's reading and writing of DNS messages (service/dns_wire.h), all
// of it bytes from a namespace (queries) or from an upstream server (answers). Nothing may crash,
// and what the functions say must agree with the message: a refusal written for a query is an
// answer to that very question with the code asked for and no records; the IPv4 addresses read
// from an answer are no more than its A records, the IPv6 ones no more than its AAAA records, and
// its TC bit and code are the header's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "service/dns_wire.h"
// After the standard headers: under clang, ldns's macros break libstdc++'s <string>.
#include <ldns/ldns.h>

namespace {

using netcell::service::Question;

// The question of `data` as ldns reads it (nullopt when it has none), so that answers from the
// input reach read_answer's checks past the id and question.
std::optional<Question> question_of(const std::uint8_t* data, std::size_t size) {
  ldns_pkt* pkt = nullptr;
  if (size < 12 || ldns_wire2pkt(&pkt, data, size) != LDNS_STATUS_OK) return std::nullopt;
  std::optional<Question> out;
  if (const ldns_rr* rr = ldns_rr_list_rr(ldns_pkt_question(pkt), 0); rr != nullptr) {
    char* text = ldns_rdf2str(ldns_rr_owner(rr));
    std::string name = text != nullptr ? text : "";
    std::free(text);
    if (!name.empty() && name.back() == '.') name.pop_back();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out = Question{ldns_pkt_id(pkt), name, static_cast<std::uint16_t>(ldns_rr_get_type(rr)),
                   static_cast<std::uint16_t>(ldns_rr_get_class(rr))};
  }
  ldns_pkt_free(pkt);
  return out;
}

// Records of `type` (A or AAAA) in the answer section, as ldns counts them.
std::size_t records(const std::uint8_t* data, std::size_t size, ldns_rr_type type) {
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, data, size) != LDNS_STATUS_OK) return 0;
  std::size_t n = 0;
  const ldns_rr_list* rrs = ldns_pkt_answer(pkt);
  for (std::size_t i = 0; rrs != nullptr && i < ldns_rr_list_rr_count(rrs); ++i) {
    n += ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == type;
  }
  ldns_pkt_free(pkt);
  return n;
}

void check_answer(const std::uint8_t* data, std::size_t size, const Question& q) {
  auto answer = netcell::service::read_answer(data, size, q);
  if (!answer) return;
  if (size < 12 || (data[2] & 0x80) == 0) std::abort();  // only responses are answers
  if (answer->truncated != ((data[2] & 0x02) != 0)) std::abort();
  if (answer->rcode != (data[3] & 0x0F)) std::abort();
  std::size_t v4 = 0;
  for (const auto& a : answer->addresses) v4 += a.is_v4();
  if (v4 > records(data, size, LDNS_RR_TYPE_A)) std::abort();
  if (answer->addresses.size() - v4 > records(data, size, LDNS_RR_TYPE_AAAA)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace netcell::service;
  if (auto q = parse_query(data, size)) {
    if (size < 12 || (data[2] & 0x80) != 0) std::abort();  // a query, not a response
    for (std::uint16_t rcode : {std::uint16_t{2}, std::uint16_t{3}, std::uint16_t{5}}) {
      auto reply = error_reply(data, size, rcode);
      if (reply.empty()) continue;
      if (reply.size() > size || reply[0] != data[0] || reply[1] != data[1]) std::abort();
      if (parse_query(reply.data(), reply.size())) std::abort();  // a response is no query
      auto answer = read_answer(reply.data(), reply.size(), *q);
      if (!answer || answer->rcode != rcode || !answer->addresses.empty() || answer->truncated) {
        std::abort();
      }
    }
  }
  (void)error_reply(data, size, 5);
  if (auto q = question_of(data, size)) check_answer(data, size, *q);
  // An answer for a fixed question with the input's id: inputs that are not about it are refused.
  if (size >= 2) {
    Question fixed{static_cast<std::uint16_t>(data[0] << 8 | data[1]), "allowed.test", 1, 1};
    check_answer(data, size, fixed);
  }
  return 0;
}
