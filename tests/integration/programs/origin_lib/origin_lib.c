const char* origin_greeting(void) { return "found through $ORIGIN"; }
