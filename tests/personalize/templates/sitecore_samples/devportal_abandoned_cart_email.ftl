<#assign flightDetails = getDecisionModelResultNode("getFlightDetails").outputs[0].flightDetails>
<#assign start = flightDetails.localDepartureDateTime?datetime("yyyy-MM-dd'T'HH:mm")>
<#assign arrival = flightDetails.localArrivalDateTime?datetime("yyyy-MM-dd'T'HH:mm")>
<#assign customData = getDecisionModelResultNode("getCustomData").outputs[0].customData>
"Data" :
{
		"country": "${flightDetails.country}",
        "currency": "${flightDetails.currency}",
        "departure_city": "${flightDetails.departure_city}",
		"destination_city": "${flightDetails.destination_city}"
		"arrival_date": "${arrival?string("dd-MMM-yy")}",
		"departure_date": "${start?string("dd-MMM-yy")}",
		"membership": "${customData.membership}",
		"loyalty_status": "${customData.loyalty_status}"
}