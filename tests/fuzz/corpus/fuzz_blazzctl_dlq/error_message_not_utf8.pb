
webhook.dlq.testBHTTP 500: ÿþâ‚ oopsJwebhook-dispatcher:http_500