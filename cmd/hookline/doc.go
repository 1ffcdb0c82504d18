// Command hookline runs and checks the Hookline gateway.
//
//	hookline serve     run the gateway
//	hookline validate  check config files; print every problem as file:line:column
//	hookline test      run the *_test.yaml config tests beside connector and rule files
//	hookline replay    retry dead-lettered deliveries (or, with --inbox, replay
//	                   failed and unmapped webhooks) through the admin API
//	hookline version   print the version
//
// One file per command; each parses its own flags and returns an exit code,
// so tests drive them through run() as a user would.
package main
