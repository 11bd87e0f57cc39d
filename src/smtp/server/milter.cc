// SCAFFOLDING, not a feature: the h-milter branch replaces this file with the milter
// stages of the session ([[milter]], milter/client.h). Until then no milter is consulted.
#include "smtp/server/session.h"

namespace postern::smtp {

net::awaitable<bool> Session::milterMessage(std::string&) { co_return true; }

}  // namespace postern::smtp
