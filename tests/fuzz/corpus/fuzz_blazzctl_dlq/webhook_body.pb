
staging.chat.eventsÒ	"77:+6281234567890*‰{"id":"0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d","type":"message.created","timestamp":"2023-11-14T22:13:20.123Z","workspace_id":77,"data":{}}20
event_id$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d:http_500BHTTP 500: internal errorJwebhook-dispatcherPXôÓ•ÿ¼1`ôÓ•ÿ¼1j$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d