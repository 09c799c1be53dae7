package main

// examples are the Example sections of the kclient commands, by command path (cli.Prepare sets them; a test
// checks that every command has one and that each line parses).
var examples = map[string]string{}
