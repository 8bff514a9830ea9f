#include "scry/log.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace scry::log {
namespace {

TEST(Log, ParsesLevelsAndFormats) {
  EXPECT_EQ(ParseLevel("debug"), Level::Debug);
  EXPECT_EQ(ParseLevel("error"), Level::Error);
  EXPECT_EQ(ParseFormat("json"), Format::Json);
  EXPECT_THROW(ParseLevel("verbose"), std::invalid_argument);
  EXPECT_THROW(ParseFormat("xml"), std::invalid_argument);
}

TEST(Log, LogfmtQuotesOnlyWhatNeedsIt) {
  auto line = FormatLine(Level::Warn, Format::Logfmt, "feature unavailable", {{"feature", "page_cache"}, {"err", ""}});
  EXPECT_NE(line.find(" level=warn msg=\"feature unavailable\" feature=page_cache err=\"\""), std::string::npos) << line;
  EXPECT_EQ(line.rfind("ts=", 0), 0u);
}

TEST(Log, JsonEscapes) {
  auto line = FormatLine(Level::Info, Format::Json, "a \"quoted\"\nline", {{"path", "C:\\x"}});
  EXPECT_NE(line.find("\"level\":\"info\""), std::string::npos);
  EXPECT_NE(line.find("\"msg\":\"a \\\"quoted\\\"\\nline\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"path\":\"C:\\\\x\""), std::string::npos) << line;
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
}

}  // namespace
}  // namespace scry::log
