// Raw ids as exports write them and their canonical form (core/identity.hpp). Shared by
// identity_tests (the C++ function) and schema_tests (its SQL twin, skype.canonical_id).
#pragma once

#include <string_view>

namespace skype_etl::test {

struct IdentityCase {
  std::string_view raw;
  std::string_view canonical;
};

inline constexpr IdentityCase k_identity_cases[] = {
    // Skype users, with and without their prefix.
    {"8:alice", "8:alice"},
    {"alice", "8:alice"},
    {"8:live:.cid.0123abcd", "8:live:.cid.0123abcd"},
    {"live:.cid.0123abcd", "8:live:.cid.0123abcd"},
    {"live:alice", "8:live:alice"},
    {"8:orgid:1234-abcd", "8:orgid:1234-abcd"},
    {"alice@example.com", "8:alice@example.com"},
    {"Alice.Liddell", "8:Alice.Liddell"},
    // Other types keep their prefix.
    {"28:concierge", "28:concierge"},
    {"28:0d5d6cff-595d-49d7-9cf8-973173f5233b", "28:0d5d6cff-595d-49d7-9cf8-973173f5233b"},
    {"4:+15551234", "4:+15551234"},
    {"guest:someone", "guest:someone"},
    {"48:calllogs", "48:calllogs"},
    {"2:someone", "2:someone"},
    {"19:abc@thread.skype", "19:abc@thread.skype"},
    {"19:abc@thread.v2", "19:abc@thread.v2"},
    {"19:Xy0=@p2p.thread.skype", "19:Xy0=@p2p.thread.skype"},
    // Contact URLs give the MRI at their end.
    {"https://azeus1-client-s.gateway.messenger.live.com/v1/users/ME/contacts/8:bob", "8:bob"},
    {"https://host/v1/users/ME/contacts/8:live:.cid.d0d1", "8:live:.cid.d0d1"},
    {"HTTPS://host/v1/users/ME/contacts/28:bot", "28:bot"},
    {"http://host/contacts/bob", "8:bob"},
    {"https://host/contacts/", ""},
    // Whitespace around, nothing, everyone.
    {"  8:alice\t", "8:alice"},
    {"\n alice \r\n", "8:alice"},
    {"\v\fbob", "8:bob"},
    {"", ""},
    {"   ", ""},
    {"*", "*"},
    // Things that only look like a prefix.
    {":alice", "8::alice"},
    {"8alice", "8:8alice"},
    {"x8:alice", "8:x8:alice"},
    {"guest", "8:guest"},
    {"Guest:x", "8:Guest:x"},
    {"httpbin", "8:httpbin"},
    {"http:/x", "8:http:/x"},
    {"Łukasz", "8:Łukasz"},
    {"a b", "8:a b"},
};

}  // namespace skype_etl::test
