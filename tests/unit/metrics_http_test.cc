// netcell-service's metrics endpoint without sockets: the listen address and the responses.
#include "service/metrics_http.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

namespace netcell::service {
namespace {

TEST(MetricsListenAddress, TakesIpv4AndBracketedIpv6WithAPort) {
  auto v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4) << v4.error().to_string();
  EXPECT_EQ(v4->text, "127.0.0.1:9464");
  EXPECT_EQ(v4->address.ss_family, AF_INET);
  EXPECT_EQ(v4->length, sizeof(sockaddr_in));
  auto v6 = parse_listen_address("[::1]:80");
  ASSERT_TRUE(v6) << v6.error().to_string();
  EXPECT_EQ(v6->text, "[::1]:80");
  EXPECT_EQ(v6->address.ss_family, AF_INET6);
  EXPECT_EQ(parse_listen_address("0.0.0.0:65535")->text, "0.0.0.0:65535");
}

TEST(MetricsListenAddress, RefusesWhatIsNotAddressColonPort) {
  for (const char* bad :
       {"", "9464", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:+80", "127.0.0.1:9x", "127.0.0.1:000009464", "localhost:9464", "::1:9464",
        "[::1]", "[::1]9464", "[127.0.0.1]:80", "1.2.3:80", "[::1]:80x"}) {
    auto parsed = parse_listen_address(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(parsed.error().message().find('\n'), std::string::npos) << bad;
  }
}

std::string body() {
  return "netcell_up 1\n";
}

TEST(MetricsResponse, GetOfMetricsIsTheExposition) {
  auto r = respond("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 13\r\nConnection: close\r\n\r\nnetcell_up 1\n");
  EXPECT_EQ(respond("GET /metrics?x=1 HTTP/1.0\n\n", body).status, 200);
}

TEST(MetricsResponse, HeadHasTheHeadersOnly) {
  auto r = respond("HEAD /metrics HTTP/1.1\r\n\r\n", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.text.find("Content-Length: 13\r\n"), std::string::npos);
  EXPECT_TRUE(r.text.ends_with("\r\n\r\n")) << r.text;
}

TEST(MetricsResponse, OtherPathsMethodsAndVersionsAreRefused) {
  int collections = 0;
  auto counting = [&] {
    ++collections;
    return std::string();
  };
  EXPECT_EQ(respond("GET / HTTP/1.1\r\n\r\n", counting).status, 404);
  EXPECT_EQ(respond("GET /metricsx HTTP/1.1\r\n\r\n", counting).status, 404);
  EXPECT_EQ(respond("POST /other HTTP/1.1\r\n\r\n", counting).status, 404);
  auto post = respond("POST /metrics HTTP/1.1\r\n\r\n", counting);
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.text.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << post.text;
  EXPECT_EQ(respond("DELETE /metrics HTTP/1.1\r\n\r\n", counting).status, 405);
  EXPECT_EQ(respond("GET /metrics HTTP/2.0\r\n\r\n", counting).status, 505);
  for (const char* bad :
       {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", " /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1 x\r\n\r\n", "GET /metrics FTP/1.1\r\n\r\n"}) {
    EXPECT_EQ(respond(bad, counting).status, 400) << bad;
  }
  EXPECT_EQ(collections, 0);  // only a GET or HEAD of /metrics collects
}

}  // namespace
}  // namespace netcell::service
